"""``avtoolkit import-checkpoint``: a released auto_avsr checkpoint to an avtoolkit state dict."""

from __future__ import annotations

import argparse

from avtoolkit.cli.values import output_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import-checkpoint", help="convert a released auto_avsr .pth for a recipe (strict key check)")
    p.add_argument("checkpoint", help="their file, e.g. vsr_trlrs3vox2_base.pth (docs/pretrained.md)")
    p.add_argument("--recipe", required=True, help="the recipe whose model it fills (auto_avsr_vsr, auto_avsr_asr, auto_avsr_avsr)")
    p.add_argument("--out", required=True, help="the state dict to write (.pt), read by the recipe's init section")
    p.add_argument("overrides", nargs="*", help="key.path=value overrides of the recipe")
    p.set_defaults(handler=import_checkpoint)


def import_checkpoint(args: argparse.Namespace) -> int:
    import torch

    from avtoolkit import build_model
    from avtoolkit.models.convert import import_auto_avsr

    from avtoolkit.data.tokens import make_vocab
    from avtoolkit.recipe import validate_recipe

    output_file(args.out, "--out")
    recipe = validate_recipe(args.recipe, args.overrides, check_data=False)
    tokens = (recipe.get("data") or {}).get("tokens")
    with torch.device("meta"):  # only names and shapes are compared: no 250M-parameter initialisation
        model = build_model(recipe)
    vocabulary = None
    if tokens and tokens.get("model"):  # the token list is known: write a checkpoint eval and transcribe read
        vocabulary = list(make_vocab(tokens).tokens)
    report = import_auto_avsr(args.checkpoint, model, args.out, recipe.tree if vocabulary else None, vocabulary)
    use = ("`avtoolkit eval/transcribe --checkpoint` read it, and a recipe's init section" if vocabulary else
           "use it in a recipe's init section (set data.tokens.model and .units for a checkpoint eval reads)")
    print(f"wrote {args.out}: {report['tensors']} tensors, {report['parameters'] / 1e6:.1f}M parameters, every key "
          f"of the recipe's {report['modality']} model present with its shape; {use} (docs/pretrained.md)")
    return 0
