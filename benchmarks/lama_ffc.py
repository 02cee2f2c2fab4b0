"""A random-weight stand-in for big-lama.pt with LaMa's architecture (Suvorov et al. 2022).

Same shape of work as Big-LaMa: 4-channel input (masked image + mask), 3 stride-2
downsampling convolutions (64 -> 512 channels), N fast-Fourier-convolution residual blocks
(18 in Big-LaMa; 75 % of the channels go through the global, spectral branch: rfft2 ->
1x1 conv over real/imag -> irfft2), 3 transposed-conv upsamplings, sigmoid. Scripted to
TorchScript with big-lama.pt's signature `forward(image, mask)`, so bgforge's LaMa backend
loads it exactly as it loads the real file. Speed, not quality, is what it measures.
"""

from __future__ import annotations

import torch
from torch import nn


class FourierUnit(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels * 2, channels * 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(channels * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        dtype = x.dtype
        f = torch.fft.rfft2(x.float(), norm="ortho")  # FFTs in fp32: cuFFT has no bf16
        f = torch.cat([f.real, f.imag], dim=1)
        f = torch.relu(self.bn(self.conv(f.to(dtype)))).float()
        real, imag = torch.chunk(f, 2, dim=1)
        return torch.fft.irfft2(torch.complex(real, imag), s=(h, w), norm="ortho").to(dtype)


class SpectralTransform(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        half = channels // 2
        self.conv1 = nn.Sequential(nn.Conv2d(channels, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU())
        self.fu = FourierUnit(half)
        self.conv2 = nn.Conv2d(half, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(x + self.fu(x))


class FFC(nn.Module):
    """Local (3x3 conv) and global (spectral) branches exchanging information."""

    def __init__(self, channels: int, ratio_global: float = 0.75):
        super().__init__()
        self.g = int(channels * ratio_global)
        self.l = channels - self.g
        self.l2l = nn.Conv2d(self.l, self.l, 3, padding=1, padding_mode="reflect", bias=False)
        self.l2g = nn.Conv2d(self.l, self.g, 3, padding=1, padding_mode="reflect", bias=False)
        self.g2l = nn.Conv2d(self.g, self.l, 3, padding=1, padding_mode="reflect", bias=False)
        self.g2g = SpectralTransform(self.g)
        self.bn_l, self.bn_g = nn.BatchNorm2d(self.l), nn.BatchNorm2d(self.g)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xl, xg = x[:, : self.l], x[:, self.l:]
        yl = torch.relu(self.bn_l(self.l2l(xl) + self.g2l(xg)))
        yg = torch.relu(self.bn_g(self.l2g(xl) + self.g2g(xg)))
        return torch.cat([yl, yg], dim=1)


class FFCResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.a, self.b = FFC(channels), FFC(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b(self.a(x))


class LamaLike(nn.Module):
    def __init__(self, ngf: int = 64, blocks: int = 18):
        super().__init__()
        down = [nn.Conv2d(4, ngf, 7, padding=3, padding_mode="reflect"), nn.ReLU()]
        c = ngf
        for _ in range(3):
            down += [nn.Conv2d(c, c * 2, 3, stride=2, padding=1), nn.BatchNorm2d(c * 2), nn.ReLU()]
            c *= 2
        self.down = nn.Sequential(*down)
        self.blocks = nn.Sequential(*[FFCResBlock(c) for _ in range(blocks)])
        up = []
        for _ in range(3):
            up += [nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1), nn.BatchNorm2d(c // 2),
                   nn.ReLU()]
            c //= 2
        up += [nn.Conv2d(c, 3, 7, padding=3, padding_mode="reflect")]
        self.up = nn.Sequential(*up)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.to(image.dtype)
        x = torch.cat([image * (1 - m), m], dim=1)
        return torch.sigmoid(self.up(self.blocks(self.down(x))))


def save_random_lama(path, ngf: int = 64, blocks: int = 18) -> None:
    """Script a random-weight LamaLike to `path` (the big-lama.pt format bgforge loads)."""
    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(LamaLike(ngf, blocks).eval()), str(path))
