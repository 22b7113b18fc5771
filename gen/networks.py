"""Layer shapes of public CNNs, for the mapper and the model (``rsaccel map --network``).

Each network is a list of :class:`NetworkLayer` (a name, a :class:`~rsaccel.gen.compiler.Layer`
with batch 1 and ``H``, ``W`` before padding, and how many times the shape occurs). Shapes are
the published ones (``../shared/eyeriss-reference.md`` section 6): AlexNet as Eyeriss runs it
(CONV2, 4, 5 and nothing else in two groups), VGG-16, ResNet-50 (v1.5: the stride-2
convolution of a down-sampling bottleneck is its 3x3), MobileNet v1 (224, width 1.0; depthwise
layers are grouped convolutions with one channel per group), LeNet-5. Fully-connected layers are
convolutions whose filter covers the whole input. Pooling is not a layer here.
"""

from dataclasses import dataclass, replace
import json

from .compiler import Layer, LayerError

__all__ = ["NetworkLayer", "NETWORKS", "network", "load_network"]


@dataclass(frozen=True)
class NetworkLayer:
    name: str
    layer: Layer
    repeat: int = 1


def _conv(name, C, M, H, R, stride=1, pad=0, groups=1, repeat=1):
    return NetworkLayer(name, Layer(N=1, C=C, M=M, H=H, W=H, R=R, S=R, stride=stride, pad=pad,
                                    groups=groups), repeat)


def _fc(name, C, M, H=1):
    return NetworkLayer(name, Layer(N=1, C=C, M=M, H=H, W=H, R=H, S=H))


def _alexnet():
    return [
        _conv("conv1", 3, 96, 227, 11, stride=4),
        _conv("conv2", 96, 256, 27, 5, pad=2, groups=2),
        _conv("conv3", 256, 384, 13, 3, pad=1),
        _conv("conv4", 384, 384, 13, 3, pad=1, groups=2),
        _conv("conv5", 384, 256, 13, 3, pad=1, groups=2),
        _fc("fc6", 256, 4096, H=6),
        _fc("fc7", 4096, 4096),
        _fc("fc8", 4096, 1000),
    ]


def _vgg16():
    layers = []
    spec = [(224, [(3, 64), (64, 64)]), (112, [(64, 128), (128, 128)]),
            (56, [(128, 256), (256, 256), (256, 256)]), (28, [(256, 512), (512, 512), (512, 512)]),
            (14, [(512, 512), (512, 512), (512, 512)])]
    for block, (size, convs) in enumerate(spec, start=1):
        for k, (cin, cout) in enumerate(convs, start=1):
            layers.append(_conv(f"conv{block}_{k}", cin, cout, size, 3, pad=1))
    return layers + [_fc("fc6", 512, 4096, H=7), _fc("fc7", 4096, 4096), _fc("fc8", 4096, 1000)]


def _resnet50():
    layers = [_conv("conv1", 3, 64, 224, 7, stride=2, pad=3)]
    cin = 64
    for stage, (width, blocks, size) in enumerate([(64, 3, 56), (128, 4, 28), (256, 6, 14),
                                                   (512, 3, 7)], start=2):
        out = 4 * width
        first_size = size if stage == 2 else 2 * size      # input of the first block
        stride = 1 if stage == 2 else 2
        p = f"res{stage}"
        layers += [
            _conv(f"{p}a_1x1a", cin, width, first_size, 1),
            _conv(f"{p}a_3x3", width, width, first_size, 3, stride=stride, pad=1),
            _conv(f"{p}a_1x1b", width, out, size, 1),
            _conv(f"{p}a_proj", cin, out, first_size, 1, stride=stride),
            _conv(f"{p}bc_1x1a", out, width, size, 1, repeat=blocks - 1),
            _conv(f"{p}bc_3x3", width, width, size, 3, pad=1, repeat=blocks - 1),
            _conv(f"{p}bc_1x1b", width, out, size, 1, repeat=blocks - 1),
        ]
        cin = out
    return layers + [_fc("fc", 2048, 1000)]


def _mobilenet_v1():
    layers = [_conv("conv1", 3, 32, 224, 3, stride=2, pad=1)]
    spec = [(32, 64, 1, 112), (64, 128, 2, 112), (128, 128, 1, 56), (128, 256, 2, 56),
            (256, 256, 1, 28), (256, 512, 2, 28)] + [(512, 512, 1, 14)] * 5 + \
        [(512, 1024, 2, 14), (1024, 1024, 1, 7)]
    k = 0
    while k < len(spec):
        cin, cout, stride, size = spec[k]
        repeat = 1
        while k + repeat < len(spec) and spec[k + repeat] == spec[k]:
            repeat += 1
        out_size = size // stride
        layers += [
            _conv(f"dw{k + 1}", cin, cin, size, 3, stride=stride, pad=1, groups=cin,
                  repeat=repeat),
            _conv(f"pw{k + 1}", cin, cout, out_size, 1, repeat=repeat),
        ]
        k += repeat
    return layers + [_fc("fc", 1024, 1000)]


def _lenet5():
    return [_conv("conv1", 1, 6, 32, 5), _conv("conv2", 6, 16, 14, 5), _fc("fc3", 16, 120, H=5),
            _fc("fc4", 120, 84), _fc("fc5", 84, 10)]


NETWORKS = {"alexnet": _alexnet, "vgg16": _vgg16, "resnet50": _resnet50,
            "mobilenet_v1": _mobilenet_v1, "lenet5": _lenet5}


def network(name, batch=1):
    """The layers of network ``name`` (a key of :data:`NETWORKS`) at batch ``batch``."""
    if name not in NETWORKS:
        raise LayerError(f"Unknown network {name!r}; known: {', '.join(NETWORKS)}")
    if not isinstance(batch, int) or batch < 1:
        raise LayerError(f"Batch must be a positive integer, not {batch!r}")
    return [replace(nl, layer=replace(nl.layer, N=batch)) for nl in NETWORKS[name]()]


def load_network(path):
    """Layers from a JSON file: a list of objects with the layer fields of ``rsaccel run``'s
    LAYER.json plus ``name`` and optionally ``repeat``."""
    with open(path) as f:
        spec = json.load(f)
    if not isinstance(spec, list) or not spec:
        raise LayerError(f"Network file {path!r} must hold a non-empty JSON list of layers")
    out = []
    for k, item in enumerate(spec):
        if not isinstance(item, dict):
            raise LayerError(f"Network file {path!r}: entry {k} is not a JSON object")
        item = dict(item)
        name = str(item.pop("name", f"layer{k + 1}"))
        repeat = item.pop("repeat", 1)
        if not isinstance(repeat, int) or isinstance(repeat, bool) or repeat < 1:
            raise LayerError(f"Network file {path!r}: '{name}' repeat must be a positive "
                             f"integer, not {repeat!r}")
        try:
            layer = Layer(**item)
        except TypeError as exc:
            raise LayerError(f"Network file {path!r}: '{name}': {exc}") from None
        layer.validate()
        out.append(NetworkLayer(name, layer, repeat))
    return out
