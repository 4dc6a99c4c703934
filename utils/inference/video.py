"""`predict.py video`: detect on every frame of a video file or camera and write the annotated video, written
beside its final name and renamed when complete (an interrupted run leaves no half file under that name)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from utils.config.detect_config import DetectConfig
from utils.inference.draw import draw_detections
from utils.inference.interface import Detector
from utils.inference.outputs import ClassCounts, count_text
from utils.inference.requests import VideoRequest


def video_frames(source: str, max_frames: int = 0) -> tuple[Iterator[np.ndarray], float]:
    """BGR frames of a video file or camera index (at most `max_frames`; 0: all) and the source's fps."""
    capture = cv2.VideoCapture(int(source) if source.isdigit() else source)
    if not capture.isOpened():
        raise FileNotFoundError(f"{source}: cannot open this video file or camera")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0

    def frames() -> Iterator[np.ndarray]:
        try:
            read = 0
            while not max_frames or read < max_frames:
                ok, frame = capture.read()
                if not ok:
                    return
                read += 1
                yield frame
        finally:
            capture.release()

    return frames(), fps


class VideoSink:
    """An annotated video written to a hidden partial file beside `output`, renamed over it by `finish`."""

    def __init__(self, output: str | Path, fps: float) -> None:
        self.output, self.fps = Path(output), fps
        self.partial = self.output.with_name(f".{self.output.stem}.partial{self.output.suffix}")
        self.writer = None
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        if self.writer is None:
            self.output.parent.mkdir(parents=True, exist_ok=True)
            fourcc = cv2.VideoWriter_fourcc(*("MJPG" if self.output.suffix.lower() == ".avi" else "mp4v"))
            self.writer = cv2.VideoWriter(str(self.partial), fourcc, self.fps, (frame.shape[1], frame.shape[0]))
        self.writer.write(frame)
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()

    def finish(self) -> None:
        """Close and rename into place."""
        self.close()
        os.replace(self.partial, self.output)


def predict_video(detector: Detector, request: VideoRequest, settings: DetectConfig) -> int:
    """Annotate every frame into `request.output`; returns the frame count."""
    frames, fps = video_frames(request.input, request.max_frames)
    show = request.show and bool(os.environ.get("DISPLAY") or os.name == "nt")
    if request.show and not show:
        print("--show: no display here; writing the video only")
    sink = VideoSink(request.output, fps)
    counts = ClassCounts(detector.class_names, "frame")
    try:
        for frame in frames:
            found = detector.detect(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), settings)[0]
            drawn = draw_detections(frame, found, list(detector.class_names))
            sink.write(drawn)
            if request.count:
                counts.add(str(sink.frames), found)
                print(f"frame {sink.frames}: {count_text(found, list(detector.class_names))}")
            if show:
                cv2.imshow("EffYOLO", drawn)
                if cv2.waitKey(1) & 0xFF == ord("q"):
                    break
    finally:
        sink.close()
        if show:
            cv2.destroyAllWindows()
    if sink.frames == 0:
        raise ValueError(f"{request.input}: no frame could be read")
    sink.finish()
    if request.count:
        counts.write(sink.output.with_name(f"{sink.output.stem}_counts.json"))
    print(f"{request.input}: {sink.frames} frames at {fps:g} fps -> {sink.output}")
    return sink.frames
