"""A soundtrack assembled by ffmpeg from audio files, so hours of audio never sit in memory.

`VideoWriter` accepts one in place of a wave: each segment is a file's first audio stream (or
silence) from an offset, fitted to a duration; the segments play one after another, and the whole
track is padded with silence or cut to the video's exact length, in samples. `extend` uses two
segments (the source video's own sound fitted to its frames, then the new speech);
`edit-lipsync --keep-original-audio` the new speech, then the source's sound from where it ends.
"""

from dataclasses import dataclass
from pathlib import Path

from skyaudio_cli.media.ffmpeg import ffmpeg_file_url


@dataclass(frozen=True)
class Segment:
    path: Path | None  # None: silence
    seconds: float | None = None  # None: the file's whole length (last segment only)
    start: float = 0.0  # where in the file the segment starts


@dataclass(frozen=True)
class Soundtrack:
    segments: tuple[Segment, ...]

    @classmethod
    def of(cls, path: Path) -> "Soundtrack":
        return cls((Segment(path),))

    def ffmpeg_arguments(
        self, first_input: int, sample_rate: int, total_samples: int
    ) -> tuple[list[str], str]:
        """Input arguments and a filter graph whose output pad `[track]` is the mono track."""
        inputs, chains = [], []
        for index, segment in enumerate(self.segments):
            if segment.seconds is None and (segment.path is None or index != len(self.segments) - 1):
                raise ValueError("only a last, non-silent segment may play to the end of its file")
            if segment.path is None:
                source = f"anullsrc=r={sample_rate}:cl=mono,"
            else:
                source = f"[{first_input + len(inputs) // 2}:a:0]"
                inputs += ["-i", ffmpeg_file_url(segment.path)]
            # Cut in samples at the output rate, so the offset is exact whatever the file's rate.
            skip = round(segment.start * sample_rate)
            offset = f",atrim=start_sample={skip},asetpts=PTS-STARTPTS" if skip and segment.path else ""
            fit = (
                ""
                if segment.seconds is None
                else f",apad,atrim=end_sample={round(segment.seconds * sample_rate)}"
            )
            chains.append(
                f"{source}aresample={sample_rate},aformat=sample_fmts=flt:channel_layouts=mono{offset}{fit}[s{index}]"
            )
        labels = "".join(f"[s{index}]" for index in range(len(self.segments)))
        chains.append(
            f"{labels}concat=n={len(self.segments)}:v=0:a=1,apad,atrim=end_sample={total_samples}[track]"
        )
        return inputs, ";".join(chains)
