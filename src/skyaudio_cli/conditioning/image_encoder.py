"""CLIP ViT-H/14 image tokens for the I2V DiT: penultimate hidden states of the vision tower.

Preprocessing follows the original Wan CLIP wrapper (wan/modules/clip.py `CLIPModel.visual`), not
diffusers' pipeline: the whole [-1, 1] frame is resized to 224x224 with bicubic interpolation
(aspect ratio not kept, nothing cropped), mapped to [0, 1] and normalised with the CLIP mean/std.
diffusers instead resizes the shortest side and centre-crops with CLIPImageProcessor, which drops
the sides of non-square portraits; the released DiTs were trained with the original's way.
Output is the output of the first 31 of 32 blocks (Wan's `use_31_block`), i.e. hidden_states[-2],
without the post-layernorm: [B, 257, 1280].
"""

from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import CLIPVisionConfig, CLIPVisionModel

from skyaudio_cli.conditioning.checkpoint_files import load_pretrained_folder, load_pth_state_dict
from skyaudio_cli.conditioning.original_keys import load_original_clip_vision

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def load_clip_vision(path: Path, dtype: torch.dtype) -> CLIPVisionModel:
    """A transformers folder (Diffusers `image_encoder/`) or the open-clip XLM-R ViT-H/14 `.pth`."""
    if path.suffix == ".pth":
        return load_original_clip_vision(load_pth_state_dict(path), path, dtype)
    return load_pretrained_folder(
        path, "model.safetensors",
        meta_model=lambda: CLIPVisionModel(CLIPVisionConfig.from_pretrained(str(path))),
        load=lambda: CLIPVisionModel.from_pretrained(str(path), dtype=dtype),
    )  # fmt: skip


class ImageEncoder:
    def __init__(self, model: CLIPVisionModel):
        self.model = model.eval().requires_grad_(False)

    @classmethod
    def from_pretrained(cls, path: Path, *, device="cpu", dtype=torch.float32) -> "ImageEncoder":
        return cls(load_clip_vision(Path(path), dtype).to(device))

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] in [-1, 1] -> normalised [B, 3, S, S] in fp32 (S = the tower's image size)."""
        size = self.model.config.image_size
        resized = F.interpolate(images.float(), size=(size, size), mode="bicubic", align_corners=False)
        mean = torch.tensor(CLIP_MEAN, device=images.device).view(1, 3, 1, 1)
        std = torch.tensor(CLIP_STD, device=images.device).view(1, 3, 1, 1)
        return (resized * 0.5 + 0.5 - mean) / std

    @torch.inference_mode()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] in [-1, 1] -> [B, 1 + (S/patch)^2, hidden] penultimate-layer tokens."""
        pixels = self.preprocess(images.to(self.model.device)).to(self.model.dtype)
        return self.model(pixel_values=pixels, output_hidden_states=True).hidden_states[-2]


def make_tiny_image_encoder(
    image_encoder_dir: Path,
    image_processor_dir: Path | None,
    *,
    hidden_size: int = 32,
    num_layers: int = 2,
    num_heads: int = 4,
    image_size: int = 224,
    patch_size: int = 14,
    seed: int = 0,
) -> None:
    """Random CLIP vision tower in the Diffusers layout (image_encoder/, image_processor/)."""
    config = CLIPVisionConfig(
        hidden_size=hidden_size,
        intermediate_size=4 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        image_size=image_size,
        patch_size=patch_size,
        hidden_act="gelu",
        layer_norm_eps=1e-5,
    )
    torch.manual_seed(seed)
    CLIPVisionModel(config).save_pretrained(str(image_encoder_dir))
    if image_processor_dir is not None:
        # Imported here: importing it prints a torchvision notice every loading user would see.
        from transformers import CLIPImageProcessor

        CLIPImageProcessor(
            size={"shortest_edge": image_size},
            crop_size={"height": image_size, "width": image_size},
            image_mean=list(CLIP_MEAN),
            image_std=list(CLIP_STD),
        ).save_pretrained(str(image_processor_dir))
