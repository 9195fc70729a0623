"""The `train` command's options (add_arguments) and its entry point (main): argparse to
TrainConfig to colorizer.train.train.
"""
from __future__ import annotations

from .losses import DECODE_LOSSES
from .models.heads import HEADS
from .train_config import OFFICIAL_ARCHS, PRECISIONS, TRAIN_ONLY, TrainConfig


def _photo_options(p, d: TrainConfig) -> None:
    """Options of photos and the checkpoint."""
    p.add_argument("--data", nargs="+", default=[], metavar="DIR",
                   help="folders of color photos (needed unless --pack gives them)")
    p.add_argument("--data-weights", type=float, nargs="+", default=None, metavar="W",
                   help="each --data folder's relative share of the crops (default: in proportion to its photos)")
    p.add_argument("--val", nargs="*", default=[], metavar="DIR",
                   help="validation photos (default: hold out part of --data)")
    p.add_argument("--out", required=True, help="checkpoint to write, e.g. weights/mymodel.pt")


def _model_options(p, d: TrainConfig) -> None:
    """Options of the network."""
    p.add_argument("--arch", default=d.arch, choices=["backbone_unet", "unet", "vae_gan", *OFFICIAL_ARCHS],
                   help="eccv16 / siggraph17: Zhang et al.'s networks (with --init official, fine-tuned "
                        "from their released weights; eccv16 takes --head classification, siggraph17 "
                        "--head regression)")
    p.add_argument("--encoder", default=d.encoder,
                   help="backbone_unet encoder: efficientnet_lite0/1/2, resnet18, vgg16")
    p.add_argument("--head", default=d.head, choices=list(HEADS))
    p.add_argument("--loss", dest="regression_loss", default=d.regression_loss,
                   choices=["mse", "l1", "huber"], help="loss of the regression head")
    p.add_argument("--decoder-channels", type=int, nargs="+", default=d.decoder_channels)
    p.add_argument("--no-pretrained", dest="pretrained", action="store_false",
                   help="train the encoder from scratch")
    p.add_argument("--pretrained-file", default=None,
                   help="torchvision-format ImageNet weights for a resnet18 / vgg16 encoder")


def _batch_options(p, d: TrainConfig) -> None:
    """Options of crops, batches, epochs and the learning rate."""
    p.add_argument("--crop-size", type=int, default=d.crop_size)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--epoch-size", type=int, default=d.epoch_size, help="random crops per epoch")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--lr", type=float, default=d.lr)


def _class_options(p, d: TrainConfig) -> None:
    """Options of ab bins, class rebalancing and decoding (classification head)."""
    p.add_argument("--rebalance-lambda", type=float, default=d.rebalance_lambda)
    p.add_argument("--bins-file", default=None, help="K x 2 .npy of ab bin centers")
    p.add_argument("--temperature", type=float, default=d.temperature,
                   help="annealed-mean temperature stored with a classification model")
    p.add_argument("--correction", type=float, default=d.correction,
                   help="share of the class rebalancing taken back when decoding (0: vivid, 1: accurate)")
    p.add_argument("--gain", type=float, default=d.gain, help="chroma gain stored with a classification model")


def _run_options(p, d: TrainConfig) -> None:
    """Options of stopping, validation, threads, seeds and the starting point."""
    p.add_argument("--patience", type=int, default=d.patience, help="early-stopping patience (epochs)")
    p.add_argument("--max-minutes", type=float, default=None, help="time budget for the whole run")
    p.add_argument("--val-images", type=int, default=d.val_images)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--workers", type=int, default=d.workers, help="data-loading processes")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--resume", action="store_true", help="carry on from OUT.resume")
    p.add_argument("--init", default=None, metavar="CHECKPOINT",
                   help="start from this checkpoint's weights (e.g. fine-tune a plain model into a hint "
                        "model); `official` with --arch eccv16 / siggraph17: their released weights")
    p.add_argument("--official-file", default=None, metavar="FILE",
                   help="with --init official: a state dict in the official layout instead of the "
                        "registry's file (e.g. your own earlier fine-tune); its layout is checked, not its hash")


def _hint_options(p, d: TrainConfig) -> None:
    """Options of hint models."""
    p.add_argument("--hints", action="store_true",
                   help="train a model that takes color hints (random hints sampled from the truth)")
    p.add_argument("--hint-p-none", type=float, default=d.hint_p_none,
                   help="share of training photos given no hints")
    p.add_argument("--hint-mean-count", type=float, default=d.hint_mean_count,
                   help="mean number of hints on a photo that gets some")
    p.add_argument("--hint-lr-mult", type=float, default=d.hint_lr_mult,
                   help="learning rate of the hint layers, as a multiple of --lr")
    p.add_argument("--hint-branch", type=int, default=d.hint_branch, metavar="CHANNELS",
                   help="add a hint propagation branch of this many channels (colorizer/models/hint_branch.py)")
    p.add_argument("--train-only", default=d.train_only, choices=TRAIN_ONLY,
                   help="hint-branch: train only the hint branch, the rest of the network frozen "
                        "(photos without hints keep their colors exactly)")
    p.add_argument("--through-spread", action="store_true",
                   help="take the decoded colors' error after hint spreading, as the app shows them "
                        "(decoded with --temperature, --correction and --gain)")


def _loss_options(p, d: TrainConfig) -> None:
    """Options of the loss terms and adversarial fine-tuning."""
    p.add_argument("--ce-weight", type=float, default=d.ce_weight,
                   help="weight of the cross-entropy (classification head); 0 with --decode-weight: "
                        "train on the decoded colors alone")
    p.add_argument("--decode-loss", default=d.decode_loss, choices=DECODE_LOSSES,
                   help="error of the decoded colors: squared error of ab, or CIE94 Delta E")
    p.add_argument("--decode-weight", type=float, default=d.decode_weight,
                   help="weight of the squared error of the decoded colors (classification head)")
    p.add_argument("--adv-weight", type=float, default=d.adv_weight,
                   help="adversarial fine-tuning: weight of a patch discriminator's verdict on the decoded "
                        "colors (0: off); every epoch is then also kept as OUT-stem.epochN.pt")
    p.add_argument("--adv-warmup", type=int, default=d.adv_warmup,
                   help="steps the discriminator learns before the colorizer hears from it")
    p.add_argument("--disc-lr", type=float, default=d.disc_lr, help="the discriminator's learning rate")
    p.add_argument("--disc-channels", type=int, default=d.disc_channels,
                   help="width of the discriminator's first layer")
    p.add_argument("--keep-epochs", action="store_true",
                   help="also keep every epoch's weights as OUT.epochN.pt (--adv-weight always does)")


def _extra_options(p, d: TrainConfig) -> None:
    """Options of scene context and the VAE-GAN."""
    p.add_argument("--scene-context", type=int, default=d.scene_context, metavar="HIDDEN",
                   help="add a scene-level context of this many hidden units (colorizer/models/scene_context.py)")
    p.add_argument("--latent-dim", type=int, default=d.latent_dim, metavar="Z",
                   help="--arch vae_gan: dimensions of the latent code z")
    p.add_argument("--kl-weight", type=float, default=d.kl_weight,
                   help="--arch vae_gan: weight of the KL term per output pixel (1: as in the ELBO)")


def _runtime_options(p, d: TrainConfig) -> None:
    """Options of device, precision, invocation limits, caches and the log."""
    p.add_argument("--device", default=d.device, help="cpu, cuda, cuda:N or auto")
    p.add_argument("--precision", default=d.precision, choices=PRECISIONS,
                   help="autocast precision of the forward passes (auto: bf16 on CPUs with native "
                        "bfloat16 and on GPUs that have it, else fp32 on CPUs and fp16 on GPUs)")
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false",
                   help="train in the contiguous (NCHW) layout instead of channels_last")
    p.add_argument("--time-budget", type=float, default=None, metavar="MINUTES",
                   help="stop this invocation cleanly after MINUTES (resume file written; --resume continues)")
    p.add_argument("--max-steps", type=int, default=None, metavar="N",
                   help="stop this invocation cleanly after N steps (resume file written; --resume continues)")
    p.add_argument("--checkpoint-minutes", type=float, default=d.checkpoint_minutes,
                   help="write the resume file this often within an epoch (0: only at epoch ends)")
    p.add_argument("--cache-dir", default=None,
                   help="where decoded photos are cached (default: .cache/photos in the repository)")
    p.add_argument("--pack", default=None, metavar="DIR",
                   help="train on a training pack (`python -m colorizer pack`) instead of decoding --data")
    p.add_argument("--log", default=None, help="log file (default: OUT with .log)")


def add_arguments(p) -> None:
    """The `train` command's options (used by colorizer/cli.py), with TrainConfig's defaults."""
    d = TrainConfig(data=[], out="")
    _photo_options(p, d)
    _model_options(p, d)
    _batch_options(p, d)
    _class_options(p, d)
    _run_options(p, d)
    _hint_options(p, d)
    _loss_options(p, d)
    _extra_options(p, d)
    _runtime_options(p, d)


def main(args) -> int:
    """Run `train` with the parsed options."""
    from .train import train
    fields = TrainConfig.__dataclass_fields__
    cfg = TrainConfig(**{k: v for k, v in vars(args).items() if k in fields})
    train(cfg)
    return 0
