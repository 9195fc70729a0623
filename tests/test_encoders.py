"""ResNet-18 / VGG-16 encoders: torchvision state-dict layout, loading of torchvision-format
files with the RGB first conv folded to gray, and the BackboneUNet built on them."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from colorizer.models import build_model
from colorizer.models.resnet import ResNet18Encoder
from colorizer.models.torchvision_weights import IMAGENET_MEAN, IMAGENET_STD, GRAY_MEAN, GRAY_STD
from colorizer.models.vgg import VGG16Encoder


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def bn(prefix, c):
    return [(f"{prefix}.weight", (c,)), (f"{prefix}.bias", (c,)), (f"{prefix}.running_mean", (c,)),
            (f"{prefix}.running_var", (c,)), (f"{prefix}.num_batches_tracked", ())]


# torchvision resnet18().state_dict() without fc.*, in its order; conv1 with 1 input channel
RESNET18_KEYS = (
    [("conv1.weight", (64, 1, 7, 7))] + bn("bn1", 64)
    + [("layer1.0.conv1.weight", (64, 64, 3, 3))] + bn("layer1.0.bn1", 64)
    + [("layer1.0.conv2.weight", (64, 64, 3, 3))] + bn("layer1.0.bn2", 64)
    + [("layer1.1.conv1.weight", (64, 64, 3, 3))] + bn("layer1.1.bn1", 64)
    + [("layer1.1.conv2.weight", (64, 64, 3, 3))] + bn("layer1.1.bn2", 64)
    + [("layer2.0.conv1.weight", (128, 64, 3, 3))] + bn("layer2.0.bn1", 128)
    + [("layer2.0.conv2.weight", (128, 128, 3, 3))] + bn("layer2.0.bn2", 128)
    + [("layer2.0.downsample.0.weight", (128, 64, 1, 1))] + bn("layer2.0.downsample.1", 128)
    + [("layer2.1.conv1.weight", (128, 128, 3, 3))] + bn("layer2.1.bn1", 128)
    + [("layer2.1.conv2.weight", (128, 128, 3, 3))] + bn("layer2.1.bn2", 128)
    + [("layer3.0.conv1.weight", (256, 128, 3, 3))] + bn("layer3.0.bn1", 256)
    + [("layer3.0.conv2.weight", (256, 256, 3, 3))] + bn("layer3.0.bn2", 256)
    + [("layer3.0.downsample.0.weight", (256, 128, 1, 1))] + bn("layer3.0.downsample.1", 256)
    + [("layer3.1.conv1.weight", (256, 256, 3, 3))] + bn("layer3.1.bn1", 256)
    + [("layer3.1.conv2.weight", (256, 256, 3, 3))] + bn("layer3.1.bn2", 256)
    + [("layer4.0.conv1.weight", (512, 256, 3, 3))] + bn("layer4.0.bn1", 512)
    + [("layer4.0.conv2.weight", (512, 512, 3, 3))] + bn("layer4.0.bn2", 512)
    + [("layer4.0.downsample.0.weight", (512, 256, 1, 1))] + bn("layer4.0.downsample.1", 512)
    + [("layer4.1.conv1.weight", (512, 512, 3, 3))] + bn("layer4.1.bn1", 512)
    + [("layer4.1.conv2.weight", (512, 512, 3, 3))] + bn("layer4.1.bn2", 512)
)
# torchvision vgg16().state_dict() without classifier.*; features.0 with 1 input channel
VGG16_KEYS = [
    (f"features.{i}.{p}", (cout, cin, 3, 3) if p == "weight" else (cout,))
    for i, cin, cout in [(0, 1, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256),
                         (12, 256, 256), (14, 256, 256), (17, 256, 512), (19, 512, 512),
                         (21, 512, 512), (24, 512, 512), (26, 512, 512), (28, 512, 512)]
    for p in ("weight", "bias")
]


def test_key_counts():
    # 1 + 5 (stem) + 8 blocks x 12 + 3 downsamples x 6; 100 without num_batches_tracked
    assert len(RESNET18_KEYS) == 120
    assert sum(not k.endswith("num_batches_tracked") for k, _ in RESNET18_KEYS) == 100
    assert len(VGG16_KEYS) == 26


@pytest.mark.parametrize("cls,expected", [(ResNet18Encoder, RESNET18_KEYS), (VGG16Encoder, VGG16_KEYS)])
def test_state_dict_layout(cls, expected):
    sd = cls().state_dict()
    assert [(k, tuple(v.shape)) for k, v in sd.items()] == expected


def torchvision_like(expected, first_key, head, seed=0):
    """Random state dict in torchvision's format: RGB first conv, plus a classifier head."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, shape in expected:
        if k == first_key:
            shape = (shape[0], 3) + shape[2:]
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(7)
        elif k.endswith("running_var"):
            sd[k] = torch.rand(shape, generator=g) + 0.5
        elif k.endswith("bn1.weight") or k.endswith("bn2.weight") or k.endswith("downsample.1.weight"):
            sd[k] = torch.rand(shape, generator=g) * 0.5 + 0.5
        else:
            fan_in = max(1, int(torch.tensor(shape[1:]).prod())) if len(shape) > 1 else 1
            sd[k] = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
    sd.update(head)
    return sd


RESNET_HEAD = {"fc.weight": torch.randn(1000, 512) * 0.01, "fc.bias": torch.zeros(1000)}
# the real classifier is 25088 -> 4096 -> 4096 -> 1000; it is dropped, so small stand-ins do
VGG_HEAD = {"classifier.0.weight": torch.randn(16, 25088) * 0.01, "classifier.0.bias": torch.zeros(16),
            "classifier.3.weight": torch.randn(16, 16), "classifier.3.bias": torch.zeros(16),
            "classifier.6.weight": torch.randn(1000, 16), "classifier.6.bias": torch.zeros(1000)}


@pytest.fixture(scope="module")
def resnet_file(tmp_path_factory):
    sd = torchvision_like(RESNET18_KEYS, "conv1.weight", RESNET_HEAD)
    path = tmp_path_factory.mktemp("w") / "resnet18-test.pth"
    torch.save(sd, path)
    return path, sd


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    sd = torchvision_like(VGG16_KEYS, "features.0.weight", VGG_HEAD)
    path = tmp_path_factory.mktemp("w") / "vgg16-test.pth"
    torch.save(sd, path)
    return path, sd


def normalized_rgb(l_norm):
    """The RGB-replicated, ImageNet-normalized image the torchvision weights expect."""
    u = (l_norm + 0.5).expand(-1, 3, -1, -1)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (u - mean) / std


def offset_kernel(w_rgb):
    """D = sum_c W_c (GRAY_MEAN - m_c) / s_c: what the gray conv cannot see at the border."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (w_rgb * (GRAY_MEAN - mean) / std).sum(1, keepdim=True)


def gray_l(seed=1, size=32):
    return torch.rand(2, 1, size, size, generator=torch.Generator().manual_seed(seed)) - 0.5


def test_gray_constants():
    # the gray input is the channel mean of the normalized replicated image
    l_norm = gray_l()
    from colorizer.models.torchvision_weights import gray_input
    torch.testing.assert_close(gray_input(l_norm), normalized_rgb(l_norm).mean(1, keepdim=True))
    # and for colour-blind filters (equal over RGB) the per-channel offsets cancel out
    s = torch.tensor(IMAGENET_STD, dtype=torch.float64)
    assert abs(float(((GRAY_MEAN - torch.tensor(IMAGENET_MEAN, dtype=torch.float64)) / s).sum())) < 1e-12
    assert abs(GRAY_STD - 3 / float((1 / s).sum())) < 1e-9


def test_resnet_gray_folding(resnet_file):
    path, sd = resnet_file
    enc = ResNet18Encoder()
    enc.load_torchvision_file(path)
    enc.eval()
    w = sd["conv1.weight"]
    l_norm = gray_l()
    z = normalized_rgb(l_norm)
    from colorizer.models.torchvision_weights import gray_input
    with torch.no_grad():
        conv_gray = enc.conv1(gray_input(l_norm))
        conv_rgb = F.conv2d(z, w, stride=2, padding=3)
        # the folded conv is the RGB conv less D over the taps inside the image, everywhere
        inside = F.conv2d(torch.ones_like(l_norm), offset_kernel(w), stride=2, padding=3)
        torch.testing.assert_close(conv_gray, conv_rgb - inside, atol=1e-4, rtol=1e-4)
        # first-layer response (conv1 + bn1, eval) equals the RGB network's where the 7x7 window
        # lies inside the image (output rows/cols 2..14 of 16 for a 32 x 32 input)
        ref = F.batch_norm(conv_rgb, sd["bn1.running_mean"], sd["bn1.running_var"],
                           sd["bn1.weight"], sd["bn1.bias"], False, 0.0, 1e-5)
        ours = enc.bn1(conv_gray)
        torch.testing.assert_close(ours[..., 2:15, 2:15], ref[..., 2:15, 2:15], atol=1e-4, rtol=1e-4)
        assert enc.bn1.num_batches_tracked.item() == 7


def test_resnet_exact_for_colourless_first_conv(resnet_file):
    """With equal RGB slices in conv1 the folded encoder is the RGB network everywhere."""
    _, sd = resnet_file
    sd = dict(sd)
    sd["conv1.weight"] = sd["conv1.weight"][:, :1].expand(-1, 3, -1, -1).clone()
    enc = ResNet18Encoder()
    enc.load_torchvision_state_dict(sd)
    enc.eval()
    l_norm = gray_l()
    with torch.no_grad():
        feats = enc(l_norm)
        x = F.conv2d(normalized_rgb(l_norm), sd["conv1.weight"], stride=2, padding=3)
        x = F.relu(F.batch_norm(x, sd["bn1.running_mean"], sd["bn1.running_var"],
                                sd["bn1.weight"], sd["bn1.bias"], False, 0.0, 1e-5))
        ref = [x]
        x = enc.maxpool(x)
        for layer in (enc.layer1, enc.layer2, enc.layer3, enc.layer4):
            x = layer(x)
            ref.append(x)
    assert [f.shape[1] for f in feats] == enc.channels == [64, 64, 128, 256, 512]
    assert [32 // f.shape[-1] for f in feats] == enc.strides == [2, 4, 8, 16, 32]
    for a, b in zip(feats, ref):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_vgg_gray_folding(vgg_file):
    path, sd = vgg_file
    enc = VGG16Encoder()
    enc.load_torchvision_file(path)
    w, b = sd["features.0.weight"], sd["features.0.bias"]
    l_norm = gray_l()
    from colorizer.models.torchvision_weights import gray_input
    with torch.no_grad():
        ours = enc.features[0](gray_input(l_norm))
        ref = F.conv2d(normalized_rgb(l_norm), w, b, padding=1)
        inside = F.conv2d(torch.ones_like(l_norm), offset_kernel(w), padding=1)
        outside = offset_kernel(w).sum((1, 2, 3)).view(1, -1, 1, 1) - inside
        torch.testing.assert_close(ours, ref + outside, atol=1e-4, rtol=1e-4)  # everywhere
        torch.testing.assert_close(ours[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], atol=1e-4, rtol=1e-4)
        # colour-blind first conv: exact everywhere, through the whole encoder
        sd2 = dict(sd)
        sd2["features.0.weight"] = w[:, :1].expand(-1, 3, -1, -1).clone()
        enc.load_torchvision_state_dict(sd2)
        feats = enc(l_norm)
        x = F.relu(F.conv2d(normalized_rgb(l_norm), sd2["features.0.weight"], b, padding=1))
        refs = []
        for i, layer in enumerate(enc.features):
            if i == 0:
                continue
            if i > 1:
                x = layer(x)
            if i in enc.taps:
                refs.append(x)
    assert [f.shape[1] for f in feats] == enc.channels == [64, 128, 256, 512, 512]
    assert [32 // f.shape[-1] for f in feats] == enc.strides == [2, 4, 8, 16, 32]
    for a, r in zip(feats, refs):
        torch.testing.assert_close(a, r, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("cls,fixture,key", [
    (ResNet18Encoder, "resnet_file", "layer3.1.bn2.running_var"),
    (VGG16Encoder, "vgg_file", "features.19.bias"),
])
def test_bad_state_dicts(cls, fixture, key, request):
    _, sd = request.getfixturevalue(fixture)
    enc = cls()
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    missing = {k: v for k, v in sd.items() if k != key}
    with pytest.raises(ValueError, match=rf"1 missing \({key}\)"):
        enc.load_torchvision_state_dict(missing)
    wrong = dict(sd)
    wrong[key] = torch.zeros(3)
    with pytest.raises(ValueError, match=rf"with the wrong shape \({key}: \(3,\) instead of"):
        enc.load_torchvision_state_dict(wrong)
    extra = dict(sd)
    extra["layer9.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"1 unexpected \(layer9.weight\)"):
        enc.load_torchvision_state_dict(extra)
    first = "conv1.weight" if cls is ResNet18Encoder else "features.0.weight"
    gray = dict(sd)
    gray[first] = sd[first][:, :1]  # already gray: refused, it would need no folding
    with pytest.raises(ValueError, match=rf"wrong shapes: {first} .*the RGB first conv"):
        enc.load_torchvision_state_dict(gray)
    # nothing was loaded by the failed attempts
    assert all(torch.equal(before[k], v) for k, v in enc.state_dict().items())
    # num_batches_tracked may be absent (older torchvision files)
    enc.load_torchvision_state_dict({k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")})


@pytest.mark.parametrize("cls,example", [(ResNet18Encoder, "resnet18-f37072fd.pth"),
                                         (VGG16Encoder, "vgg16-397923af.pth")])
def test_bad_files(cls, example, tmp_path):
    enc = cls()
    with pytest.raises(FileNotFoundError, match=example):
        enc.load_torchvision_file(tmp_path / "nope.pth")
    text = tmp_path / "notes.pth"
    text.write_text("not a weights file")
    with pytest.raises(ValueError, match=example):
        enc.load_torchvision_file(text)
    listing = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], listing)
    with pytest.raises(ValueError, match=example):
        enc.load_torchvision_file(listing)
    nested = tmp_path / "nested.pth"
    torch.save({"state_dict": {"conv1.weight": torch.zeros(1)}}, nested)
    with pytest.raises(ValueError, match=example):
        enc.load_torchvision_file(nested)


@pytest.mark.parametrize("encoder,fixture", [("resnet18", "resnet_file"), ("vgg16", "vgg_file")])
def test_backbone_unet(encoder, fixture, request):
    path, sd = request.getfixturevalue(fixture)
    torch.manual_seed(0)
    l_norm = torch.rand(2, 1, 64, 64) - 0.5
    for head, out_ch in (("regression", 2), ("classification", 313)):
        model = build_model("backbone_unet", encoder=encoder, decoder_channels=[32, 16, 16], head=head)
        assert model.input_multiple == 32
        model.eval()
        with torch.no_grad():
            out = model(l_norm)
            ab = model.predict_ab(l_norm)
        assert out.shape == (2, out_ch, 16, 16)
        assert ab.shape == (2, 2, 16, 16)
    model.load_pretrained_encoder(str(path))
    first = "conv1.weight" if encoder == "resnet18" else "features.0.weight"
    from colorizer.models.torchvision_weights import fold_rgb_conv
    torch.testing.assert_close(model.encoder.state_dict()[first], fold_rgb_conv(sd[first])[0])
    with torch.no_grad():
        assert model.predict_ab(l_norm).shape == (2, 2, 16, 16)
    with pytest.raises(ValueError, match="needs a weights file"):
        model.load_pretrained_encoder()
