"""Fine-tuning: `skyaudio dataset build` (clips -> cached training triplets) and `skyaudio train`
(LoRA / audio-layer training with the facial-mask flow-matching loss and a staged curriculum, on
accelerate: one process, DDP via `accelerate launch` / `torchrun`, or FSDP through accelerate's config)."""
