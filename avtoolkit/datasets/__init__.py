"""The registered datasets, one folder per corpus (``lrw/``, ``manifest/``, ``grid/``), and their base class.

Each corpus folder holds its layout reader, any preparation (``prepare.py``), a
torch ``Dataset`` of clips and ``datamodule.py``, which registers the ``dataset`` component.
The registry imports ``datamodule.py`` of each folder when the dataset kind is first used.
"""
