"""Face identity: the torch port of dlib's face-recognition ResNet against dlib itself.

Prints ms per image for descriptors (port vs ``dlib.face_recognition_model_v1``) and for chip
cutting (``cut_chips`` vs ``dlib.get_face_chip``) at batch 1 and 8, and the largest descriptor
difference over the test images (synthetic chips, ../shared portraits and a few CelebA faces).

    python bench/identity.py
    python bench/identity.py --repeats 10 --devices cpu cuda
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"


def time_ms(run: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(best, median) wall time of ``run`` in ms over ``repeats`` calls after one warm-up.

    On a shared machine the best time is the better estimate of the real cost.
    """
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000.0)
    return min(times), statistics.median(times)


def test_faces(dlib) -> list[tuple[str, np.ndarray, object]]:
    """(name, image, landmarks) for every detectable face among the shared test images."""
    from PIL import Image

    from models.face_identity import model_path

    files = sorted((SHARED / "portraits" / "images").glob("*"))
    files += [SHARED / "celeba_10k" / "images" / f"{i:06d}.jpg" for i in range(1, 9)]
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(model_path("shape_predictor_68_face_landmarks.dat")))
    faces = []
    for path in files:
        if not path.is_file():
            continue
        image = np.array(Image.open(path).convert("RGB"))
        found = detector(image, 1 if min(image.shape[:2]) < 400 else 0)
        if len(found):
            faces.append((path.name, image, predictor(image, found[0])))
    return faces


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per row")
    parser.add_argument(
        "--devices",
        nargs="+",
        default=None,
        help="devices for the port (default: cpu, plus cuda when present)",
    )
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import dlib
    import torch

    from editors.identity import chip_transform
    from models.face_identity import FaceIdentity, chips_to_tensor, cut_chips, model_path

    devices = args.devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    port = FaceIdentity()
    reference = dlib.face_recognition_model_v1(str(model_path()))
    faces = test_faces(dlib)
    rng = np.random.default_rng(0)
    synthetic = list(rng.integers(0, 256, (4, 150, 150, 3), dtype=np.uint8))
    chips = synthetic + [
        dlib.get_face_chip(img, shape, size=150, padding=0.25) for _, img, shape in faces
    ]
    batch8 = (chips * 8)[:8]

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; dlib "
        f"{dlib.__version__} (CUDA: {dlib.DLIB_USE_CUDA}); {args.repeats} timed calls per row"
    )
    header = (
        f"{'what':<34} {'device':<6} {'batch':>5} {'best ms/image':>14} {'median ms/image':>16}"
    )
    print(header)
    print("-" * len(header))
    for batch in (1, 8):
        some = batch8[:batch]
        best, median = time_ms(
            lambda s=some: reference.compute_face_descriptor(list(s)), args.repeats
        )
        print(
            f"{'descriptor: dlib':<34} {'cpu':<6} {batch:>5} {best / batch:>14.1f} "
            f"{median / batch:>16.1f}"
        )
        for device in devices:
            model = port.to(device)
            tensor = chips_to_tensor(some).to(device)

            def run(m=model, t=tensor, d=device) -> None:
                with torch.inference_mode():
                    m.embed(t)
                if d.startswith("cuda"):
                    torch.cuda.synchronize()

            best, median = time_ms(run, args.repeats)
            print(
                f"{'descriptor: port':<34} {device:<6} {batch:>5} {best / batch:>14.1f} "
                f"{median / batch:>16.1f}"
            )
    port.to("cpu")

    if faces:
        name, image, shape = max(faces, key=lambda f: f[1].size)  # the largest photo
        pixels = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float()
        landmarks = np.array([[p.x, p.y] for p in shape.parts()], np.float64)
        transform = chip_transform(landmarks)
        rows = [
            ("chip: dlib.get_face_chip", lambda: dlib.get_face_chip(image, shape, 150, 0.25)),
            (
                "chip: cut_chips exact (quantize)",
                lambda: cut_chips(pixels, transform, quantize=True),
            ),
            ("chip: cut_chips differentiable", lambda: cut_chips(pixels, transform)),
        ]
        for label, run_chip in rows:
            best, median = time_ms(run_chip, args.repeats)
            print(
                f"{label:<34} {'cpu':<6} {1:>5} {best:>14.1f} {median:>16.1f}   ({name}, "
                f"{image.shape[1]}x{image.shape[0]})"
            )

    expected = np.array([np.array(d) for d in reference.compute_face_descriptor(chips)])
    with torch.inference_mode():
        ours = port.embed(chips_to_tensor(chips)).numpy()
    print(
        f"\nmax |port - dlib| over {len(chips)} chips ({len(synthetic)} synthetic, "
        f"{len(faces)} real faces): {np.abs(ours - expected).max():.2e} per component; "
        f"max descriptor distance {np.linalg.norm(ours - expected, axis=1).max():.2e}"
    )
    if faces:
        drift = []
        for _, image, shape in faces:
            pixels = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float()
            landmarks = np.array([[p.x, p.y] for p in shape.parts()], np.float64)
            transform = chip_transform(landmarks)
            with torch.inference_mode():
                exact = port.embed(cut_chips(pixels, transform, quantize=True))
                smooth = port.embed(cut_chips(pixels, transform))
            drift.append(float((exact - smooth).norm()))
        print(
            f"differentiable vs dlib-exact chip: descriptor distance max {max(drift):.4f}, "
            f"mean {statistics.mean(drift):.4f} (same-person threshold 0.6)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
