"""Third-party networks transcribed from the seeds, for tests that check our spec against their own code.

``d2l_resnet18``: seed 003 (``/work/shared/seeds/003_5f32a58e5c7a6dd8.txt``), a blog post of
d2l's (Dive into Deep Learning, 7.6) ResNet on Fashion-MNIST. ``Residual``, ``resnet_block``,
``b1``..``b5`` and ``net`` are the post's code verbatim (its lines were run together on the
page; only the line breaks and the comments' language are restored, and the names are local to
the function so that importing this module needs no torch). What the post's code says, and what
the tests rely on:

- every ``nn.Conv2d`` keeps PyTorch's default ``bias=True``, the 1x1 ``conv3`` included;
- ``Residual.forward`` is ``relu(bn2(conv2(relu(bn1(conv1(X))))) + conv3(X))``: no BatchNorm after
  ``conv3``;
- the state_dict names are ``nn.Sequential`` indices: ``0.0.weight`` (the 7x7 conv), ``0.1.*`` (its
  BN), ``1.0.conv1.weight`` ... ``4.1.bn2.*``, ``2.0.conv3.*``, ``7.weight``/``7.bias`` (the Linear).

Nothing here is imported by the code under test.
"""

from __future__ import annotations


def d2l_resnet18():
    """The seed's ``net``: 1 input channel (Fashion-MNIST), 10 classes, as the post builds it."""
    from torch import nn
    from torch.nn import functional as F

    class Residual(nn.Module):  # the residual block
        def __init__(self, input_channels, num_channels, use_1x1conv=False, strides=1):
            super().__init__()
            self.conv1 = nn.Conv2d(input_channels, num_channels, kernel_size=3, padding=1, stride=strides)
            self.conv2 = nn.Conv2d(num_channels, num_channels, kernel_size=3, padding=1)
            if use_1x1conv:
                self.conv3 = nn.Conv2d(input_channels, num_channels, kernel_size=1, stride=strides)
            else:
                self.conv3 = None
            self.bn1 = nn.BatchNorm2d(num_channels)
            self.bn2 = nn.BatchNorm2d(num_channels)

        def forward(self, X):
            Y = F.relu(self.bn1(self.conv1(X)))
            Y = self.bn2(self.conv2(Y))
            if self.conv3:
                X = self.conv3(X)
            Y += X
            return F.relu(Y)

    b1 = nn.Sequential(
        nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    )

    def resnet_block(input_channels, num_channels, num_residuals, first_block=False):  # a stage of blocks
        blk = []
        for i in range(num_residuals):
            # except in the first stage, the first block of a stage halves height and width
            if i == 0 and not first_block:
                blk.append(Residual(input_channels, num_channels, use_1x1conv=True, strides=2))
            else:
                blk.append(Residual(num_channels, num_channels))
        return blk

    # b2 neither doubles the channels nor halves height and width
    b2 = nn.Sequential(*resnet_block(64, 64, 2, first_block=True))
    b3 = nn.Sequential(*resnet_block(64, 128, 2))
    b4 = nn.Sequential(*resnet_block(128, 256, 2))
    b5 = nn.Sequential(*resnet_block(256, 512, 2))

    net = nn.Sequential(b1, b2, b3, b4, b5, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(512, 10))
    return net


# The seed's net index -> our canonical stage (spec.stages): b1..b5, the pool and the Linear.
D2L_STAGES = {"0": "stem", "1": "layer1", "2": "layer2", "3": "layer3", "4": "layer4", "5": "pool", "7": "logits"}

# What the seed prints after running X = torch.rand(size=(1, 1, 224, 224)) through ``net`` layer by
# layer (copied from the post's output, per sample, NCHW; Flatten's (1, 512) is not a stage of ours).
D2L_PRINTED_SHAPES_224 = {
    "stem": (64, 56, 56),
    "layer1": (64, 56, 56),
    "layer2": (128, 28, 28),
    "layer3": (256, 14, 14),
    "layer4": (512, 7, 7),
    "pool": (512, 1, 1),
    "logits": (10,),
}
