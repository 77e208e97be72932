"""Point dragging (DragGAN, Pan et al. 2023): move handle points of a generated image to targets.

Each step renders the latent, finds every handle again by nearest feature (point tracking, paper
section 3.3), then takes one Adam step on the first W+ rows that pulls the features around each
handle one pixel towards its target (motion supervision, eq. 1). The features are also pulled
towards the starting ones warped smoothly so that each handle lands on its target (the guide),
which keeps what lies far from the drag as it was; a painted mask marks the region allowed to
move, and features outside it are held to their starting values.

Features are read from one synthesis block through ``synthesis(feature_hook=...)`` and sampled
bilinearly at image pixel positions, which equals DragGAN's resize-to-the-image-then-index without
materialising a full-resolution feature map (a 1024 px model would need gigabytes of it).
Points are (x, y) image pixels with pixel centres at integers, as everywhere in ``editors``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from editors.errors import DragError
from models.generator import Generator, NoiseMode, to_rgb_u8
from models.jobs import Cancelled, OnStep, Progress, ShouldStop, report

Point = tuple[float, float]
PREVIEW_EVERY_STEP_UP_TO = 256  # px; larger models draw a preview every PREVIEW_INTERVAL steps
PREVIEW_INTERVAL = 5


@dataclass(frozen=True, slots=True)
class DragSettings:
    """Tuning knobs; ``None`` fields are chosen from the model's resolution (``for_generator``)."""

    max_steps: int = 400  # optimisation steps at most (the drag ends earlier when points arrive)
    lr: float | None = None  # Adam learning rate on the W+ rows (DragGAN: 2e-3 at 512 px)
    rows: int | None = None  # W+ rows optimised (DragGAN: the first 6 of a 512/1024 px model)
    feature_resolution: int | None = None  # block whose features are pulled, by its size in px
    track_resolution: int | None = None  # block whose features find the points again
    motion_radius: float | None = None  # r1: handle neighbourhood pulled each step, px
    track_radius: int | None = None  # r2: search window of point tracking, px
    # A handle this close to its target has arrived, px. The tracker runs ahead of the content;
    # with the guide holding the picture, stopping at half a pixel instead of one on the demo
    # model moved dlib's landmark to 0.30 of the start distance instead of 0.36 (0.31 on twelve
    # other faces), identity drift 0.42 instead of 0.41 (bench/drag.py).
    done_distance: float | None = None
    # lambda of the fixed-region loss; DragGAN's 10 held the demo model's points in place, 1 lets
    # them move while the region outside the mask changes 4x less than inside (tests/editors)
    mask_weight: float = 1.0
    refine: bool = True  # track to a quarter pixel (DragGAN: whole pixels)
    # Warp guidance: the features are also pulled (L1) towards the starting features warped
    # smoothly so that each handle lands on its target (``warp_grid``), which holds everything
    # far from the drag where it was. dlib follows broad moves only; on the demo model this
    # left the landmark at 0.36 of the start distance instead of 0.45 at the same identity
    # drift (0.40; bench/drag.py). 0: DragGAN's losses only.
    guide_weight: float = 10.0
    # The warp's Gaussian fade, px (default 3/16 of the picture: a face's lower jaw moves as a
    # whole; on the demo model 12 px beat 16 and 20 px, and 2.4 drag lengths).
    guide_sigma: float | None = None
    # Discs of this many drag lengths around each handle and target where the picture may
    # change, without a mask (0: no such limit); the unguided drag's identity drift fell from
    # 0.49 to 0.39 with 4 (weight 5), the guided one's does not.
    auto_mask: float = 0.0
    auto_mask_weight: float = 5.0

    def for_generator(self, generator: Generator) -> DragSettings:
        """These settings with every ``None`` filled in for ``generator``."""
        res = generator.resolution
        blocks = list(generator.block_resolutions())  # type: ignore[attr-defined]
        scale = res / 512  # DragGAN's radii are given for 512 px images
        feature_res = self.feature_resolution or _default_feature_resolution(res)
        if feature_res not in blocks:
            raise DragError(f"feature resolution {feature_res} is not one of {blocks}")
        track_res = self.track_resolution or _default_track_resolution(res, feature_res)
        if track_res not in blocks:
            raise DragError(f"tracking resolution {track_res} is not one of {blocks}")
        return DragSettings(
            max_steps=self.max_steps,
            # Smaller models need bigger steps to move a pixel; measured on the 64 px demo model.
            lr=self.lr if self.lr is not None else min(1e-2, 2e-3 * (512 / res) ** 0.8),
            rows=self.rows if self.rows is not None else min(6, generator.num_ws),
            feature_resolution=feature_res,
            track_resolution=track_res,
            motion_radius=self.motion_radius
            if self.motion_radius is not None
            else _default_motion_radius(res),
            track_radius=self.track_radius
            if self.track_radius is not None
            else max(3, round(12 * scale)),
            done_distance=self.done_distance
            if self.done_distance is not None
            else max(0.5, 2 * scale),
            mask_weight=self.mask_weight,
            refine=self.refine,
            auto_mask=self.auto_mask,
            auto_mask_weight=self.auto_mask_weight,
            guide_weight=self.guide_weight,
            guide_sigma=self.guide_sigma if self.guide_sigma is not None else 3 * res / 16,
        )


def _default_motion_radius(resolution: int) -> float:
    # DragGAN pulls 3 px around a handle of a 512 px image. On the 64 px demo model dlib
    # follows only broad moves (an ideal warp fading over 4 px moves its landmark 42 % of the
    # way, over 8 px 82 %: bench/drag.py --warp), and an eighth of the picture moved it best.
    if resolution <= 64:
        return resolution / 8
    return max(2.0, 3 * resolution / 512, min(4.0, resolution / 16))


def automatic_mask(
    resolution: int, handles: Sequence[Point], targets: Sequence[Point], radius: float
) -> np.ndarray:
    """[R, R] bool: discs of ``radius`` drag lengths (at least 2 px) around handles and targets.

    What may change when the user gave no mask (``DragSettings.auto_mask``).
    """
    yy, xx = np.mgrid[:resolution, :resolution].astype(np.float64)
    region = np.zeros((resolution, resolution), bool)
    for handle, target in zip(handles, targets, strict=True):
        reach = max(2.0, radius * math.dist(handle, target))
        for x, y in (handle, target):
            region |= (xx - x) ** 2 + (yy - y) ** 2 <= reach**2
    return region


def warp_grid(
    size: int,
    resolution: int,
    handles: Sequence[Point],
    targets: Sequence[Point],
    sigma: float,
) -> torch.Tensor:
    """``grid_sample`` grid [1, size, size, 2] moving the content at each handle to its target.

    The displacement is whole on the drag's midpoint and fades as a Gaussian of ``sigma`` image
    px; a map of ``size`` px samples the picture's ``resolution`` px coordinates (pixel centres
    at integers).
    """
    centres = (torch.arange(size, dtype=torch.float64) + 0.5) * (resolution / size) - 0.5
    yy, xx = torch.meshgrid(centres, centres, indexing="ij")
    sx, sy = xx.clone(), yy.clone()
    for handle, target in zip(handles, targets, strict=True):
        mx, my = (handle[0] + target[0]) / 2, (handle[1] + target[1]) / 2
        weight = torch.exp(-((xx - mx) ** 2 + (yy - my) ** 2) / (2 * sigma**2))
        weight = weight / weight.max()
        # each output position reads from where its content came from (a backward warp)
        sx -= (target[0] - handle[0]) * weight
        sy -= (target[1] - handle[1]) * weight
    grid = torch.stack([(2 * sx + 1) / resolution - 1, (2 * sy + 1) / resolution - 1], dim=-1)
    return grid[None].to(torch.float32)


def _default_track_resolution(resolution: int, feature_resolution: int) -> int:
    # DragGAN tracks on the features it pulls. Those of a small model's 32 px block, pulled a
    # pixel ahead each step, soon match ahead of the content, and the drag stops early; the
    # coarser block below them follows the content better (64 px demo model, 12 faces: dlib's
    # landmark at 0.45 of the start distance instead of 0.49, bench/drag.py; 64 px was worse).
    if resolution <= 64 and feature_resolution >= 32:
        return feature_resolution // 2
    return feature_resolution


def _default_feature_resolution(resolution: int) -> int:
    # DragGAN reads the 6th block (128 px) of 512 and 1024 px models: a quarter of 512 px.
    # Small models keep more detail: half their size, never under 32 px.
    return max(min(resolution, 32), min(128, resolution // 2))


@dataclass(frozen=True, slots=True)
class DragProgress(Progress):
    """A step's report: ``preview`` is the current image, ``points`` the tracked handles."""

    points: tuple[Point, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class DragResult:
    """The dragged latent and what it shows."""

    ws: np.ndarray  # [num_ws, w_dim] float32
    image: np.ndarray  # [R, R, 3] uint8
    points: tuple[Point, ...]  # tracked handle positions in ``image``
    steps: int  # optimisation steps taken
    arrived: bool  # every handle reached its target (within ``done_distance``)
    start_points: tuple[Point, ...] = field(default=())  # the handles as given


# ---------------------------------------------------------------------------------------------
# Input checks


def _points(values: Sequence[Sequence[float]], name: str, resolution: int) -> list[Point]:
    points = []
    for index, value in enumerate(values):
        try:
            x, y = (float(v) for v in value)
        except (TypeError, ValueError):
            raise DragError(f"{name} {index + 1} must be an (x, y) pair, got {value!r}") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise DragError(f"{name} {index + 1} ({x}, {y}) is not a finite position")
        if not (0 <= x <= resolution - 1 and 0 <= y <= resolution - 1):
            raise DragError(
                f"{name} {index + 1} ({x:g}, {y:g}) is outside the {resolution}x{resolution} image "
                f"(x and y must lie in 0..{resolution - 1})"
            )
        points.append((x, y))
    return points


def check_inputs(
    generator: Generator,
    ws: npt.ArrayLike,
    handles: Sequence[Sequence[float]],
    targets: Sequence[Sequence[float]],
    mask: npt.ArrayLike | None = None,
) -> tuple[np.ndarray, list[Point], list[Point], np.ndarray | None]:
    """Validate a drag request; returns (ws [num_ws, w_dim], handles, targets, mask [R, R] bool).

    Raises:
        DragError: (a ``ValueError``) a model without W+ or feature access, unpaired or outside
            points, or a latent or mask of the wrong shape.
    """
    has_hook = "feature_hook" in inspect.signature(generator.synthesis).parameters
    if generator.num_ws < 2 or not has_hook:
        raise DragError(
            f"drag needs a StyleGAN2 model (W+ latent and readable features); "
            f"this {generator.kind} model has neither"
        )
    res = generator.resolution
    if len(handles) == 0:
        raise DragError("place at least one handle point and its target")
    if len(handles) != len(targets):
        raise DragError(
            f"every handle needs a target: got {len(handles)} handles and {len(targets)} targets"
        )
    handle_points = _points(handles, "handle", res)
    target_points = _points(targets, "target", res)
    latent = np.array(ws, dtype=np.float32)  # a copy: read-only arrays (EditState) are fine
    if latent.ndim == 3 and latent.shape[0] == 1:
        latent = latent[0]
    if latent.shape != (generator.num_ws, generator.w_dim):
        raise DragError(
            f"the latent is {list(latent.shape)}; this model needs "
            f"[{generator.num_ws}, {generator.w_dim}]"
        )
    if not np.isfinite(latent).all():
        raise DragError("the latent contains NaN or infinite values")
    region = None
    if mask is not None:
        region = np.asarray(mask)
        if region.shape != (res, res):
            raise DragError(f"the mask is {list(region.shape)}; it must be [{res}, {res}]")
        region = region.astype(bool)
        if not region.any():
            raise DragError("the mask is empty: paint the region that may move")
    return latent, handle_points, target_points, region


# ---------------------------------------------------------------------------------------------
# Feature sampling


def _sample(features: torch.Tensor, xy: torch.Tensor, resolution: int) -> torch.Tensor:
    """Features [C, P] at image pixel positions ``xy`` [P, 2] (bilinear, edges clamped)."""
    # align_corners=False maps pixel centres the way F.interpolate(..., "bilinear") resizes.
    grid = (2 * xy + 1) / resolution - 1
    out = F.grid_sample(
        features,
        grid.view(1, 1, -1, 2),
        mode="bilinear",
        padding_mode="border",
        align_corners=False,
    )
    return out[0, :, 0]


def _disc_offsets(radius: float) -> torch.Tensor:
    r = math.floor(radius)
    ys, xs = torch.meshgrid(torch.arange(-r, r + 1), torch.arange(-r, r + 1), indexing="ij")
    keep = xs**2 + ys**2 <= radius**2
    return torch.stack([xs[keep], ys[keep]], dim=1).to(torch.float32)


def _square_offsets(radius: int) -> torch.Tensor:
    ys, xs = torch.meshgrid(
        torch.arange(-radius, radius + 1), torch.arange(-radius, radius + 1), indexing="ij"
    )
    return torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1).to(torch.float32)


def _track(
    features: torch.Tensor,
    point: torch.Tensor,
    reference: torch.Tensor,
    window: torch.Tensor,
    resolution: int,
    refine: bool,
) -> torch.Tensor:
    """The position in ``point + window`` whose feature is nearest (L2) to ``reference``.

    With ``refine`` the best pixel is refined on a quarter-pixel grid (features are bilinear,
    so between pixels they are defined too); small images need the precision.
    """

    def nearest(candidates: torch.Tensor) -> torch.Tensor:
        candidates = candidates.clamp(0, resolution - 1)
        found = _sample(features, candidates, resolution)
        return candidates[int((found - reference[:, None]).square().sum(0).argmin())]

    best = nearest(point + window)
    return nearest(best + _REFINE_OFFSETS.to(best.device)) if refine else best


_REFINE_OFFSETS = torch.cartesian_prod(torch.linspace(-0.5, 0.5, 5), torch.linspace(-0.5, 0.5, 5))


# ---------------------------------------------------------------------------------------------
# The drag


def drag(
    generator: Generator,
    ws: npt.ArrayLike,
    handles: Sequence[Sequence[float]],
    targets: Sequence[Sequence[float]],
    *,
    mask: npt.ArrayLike | None = None,
    steps: int | None = None,
    settings: DragSettings | None = None,
    noise_mode: NoiseMode = "const",
    noise_strength: Sequence[float] | None = None,
    on_step: OnStep | None = None,
    should_stop: ShouldStop | None = None,
) -> DragResult:
    """Drag ``handles`` of the image of ``ws`` to ``targets``.

    Args:
        generator: a StyleGAN2 generator (a tuned copy from pivotal tuning works the same way).
        ws: [num_ws, w_dim] (or [1, num_ws, w_dim]) latent of the image.
        handles: (x, y) image pixels to move.
        targets: (x, y) where each handle should go (same count as ``handles``).
        mask: [R, R], true where the image may change; None: everywhere, held by the guide
            (or ``automatic_mask`` discs around the points when ``settings.auto_mask`` > 0).
        steps: most optimisation steps (default ``settings.max_steps``).
        settings: tuning (defaults chosen from the resolution).
        noise_mode, noise_strength: the noise the image is rendered with ("random" is refused:
            tracking needs the same image for the same latent).
        on_step: receives a ``DragProgress`` per step with the image and the tracked points.
        should_stop: polled each step; when true the drag raises ``Cancelled`` whose ``partial``
            is the ``DragResult`` of the last completed step (the last good state).

    Returns:
        The dragged latent, its image and the tracked handle positions.

    Raises:
        DragError: bad input (see ``check_inputs``).
        Cancelled: ``should_stop`` asked to stop.
    """
    latent, handle_pts, target_pts, region = check_inputs(generator, ws, handles, targets, mask)
    if noise_mode == "random":
        raise DragError("drag needs fixed noise: use noise mode 'const' or 'none'")
    cfg = (settings or DragSettings()).for_generator(generator)
    max_steps = cfg.max_steps if steps is None else int(steps)
    if max_steps < 0:
        raise DragError(f"steps must be >= 0, got {max_steps}")
    assert cfg.rows is not None and cfg.motion_radius is not None
    assert cfg.track_radius is not None and cfg.done_distance is not None
    res = generator.resolution
    device = generator.device
    dtype = generator.w_avg.dtype
    block = generator.block_resolutions().index(cfg.feature_resolution)  # type: ignore[attr-defined]
    track_block = generator.block_resolutions().index(cfg.track_resolution)  # type: ignore[attr-defined]
    last_resolution = max(cfg.feature_resolution, cfg.track_resolution or 0)

    base = torch.from_numpy(latent).to(device=device, dtype=torch.float32)[None]
    fixed_rows = base[:, cfg.rows :]
    trainable = base[:, : cfg.rows].clone().requires_grad_(True)
    optimizer = torch.optim.Adam([trainable], lr=cfg.lr)
    points = torch.tensor(handle_pts, dtype=torch.float32, device=device)
    goals = torch.tensor(target_pts, dtype=torch.float32, device=device)
    motion_patch = _disc_offsets(cfg.motion_radius).to(device)
    window = _square_offsets(cfg.track_radius).to(device)
    keep = None
    mask_weight = cfg.mask_weight
    if region is None and cfg.auto_mask > 0:
        region = automatic_mask(res, handle_pts, target_pts, cfg.auto_mask)
        mask_weight = cfg.auto_mask_weight
    if region is not None:
        # Area-downsampled share of each feature cell that must stay fixed.
        outside = torch.from_numpy(~region).to(device=device, dtype=torch.float32)[None, None]
        keep = F.adaptive_avg_pool2d(outside, cfg.feature_resolution)

    # Only the blocks up to the features take part in the loss. Large models skip the rest on
    # most steps and draw the picture only for some previews and the result (a 1024 px step
    # then costs about what a 128 px model's does).
    preview_every = 1 if res <= PREVIEW_EVERY_STEP_UP_TO else PREVIEW_INTERVAL
    # 'orig' and 'resnet' networks only draw RGB at the end: their partial renders run it all.
    partial_ok = getattr(generator, "arch", "skip") == "skip"

    def render(
        latent_rows: torch.Tensor, picture: bool
    ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray | None]:
        """(features pulled, features tracked (detached), picture if asked)."""
        captured: dict[str, torch.Tensor] = {}

        def hook(index: int, features: torch.Tensor) -> None:
            if index == block:
                captured["f"] = features
            if index == track_block:
                captured["t"] = features.detach()

        full = torch.cat([latent_rows, fixed_rows], dim=1).to(dtype)
        image = generator.synthesis(
            full,
            noise_mode=noise_mode,
            noise_strength=noise_strength,
            feature_hook=hook,
            max_resolution=None if picture or not partial_ok else last_resolution,
        )
        features, tracking = captured["f"].float(), captured["t"].float()
        if not torch.isfinite(features).all() or not torch.isfinite(image).all():
            raise FloatingPointError
        return features, tracking, to_rgb_u8(image.detach())[0] if picture else None

    def result(rows: torch.Tensor, step: int, done: bool) -> DragResult:
        # Rendered again without autograd: the pixels of any later render of the result's
        # latent (a gradient render may take another, equally exact, arithmetic path).
        with torch.no_grad():
            image = render(rows, True)[2]
        assert image is not None
        ws_out = torch.cat([rows.detach(), fixed_rows], dim=1)[0]
        return DragResult(
            ws=ws_out.cpu().numpy().astype(np.float32),
            image=image,
            points=_as_points(points),
            steps=step,
            arrived=done,
            start_points=tuple(handle_pts),
        )

    with torch.enable_grad():
        features, tracking, image = render(trainable, True)
        with torch.no_grad():
            references = _sample(tracking, points, res)  # [C, handles]
            start_features = features.detach() if keep is not None else None
            guide = None
            if cfg.guide_weight > 0:
                assert cfg.guide_sigma is not None
                grid = warp_grid(
                    features.shape[-1], res, handle_pts, target_pts, cfg.guide_sigma
                ).to(device)
                guide = F.grid_sample(
                    features.detach(), grid, mode="bilinear", padding_mode="border",
                    align_corners=False,
                )  # fmt: skip
        step = 0
        while True:
            with torch.no_grad():
                if step > 0:
                    for i in range(len(points)):
                        points[i] = _track(
                            tracking, points[i], references[:, i], window, res, cfg.refine
                        )
                distances = (goals - points).norm(dim=1)
                done = bool((distances <= cfg.done_distance).all())
            report(
                on_step,
                DragProgress(
                    step,
                    max_steps,
                    f"step {step}/{max_steps}",
                    {"distance": float(distances.max())},
                    image,
                    _as_points(points),
                ),
            )
            if done or step >= max_steps:
                return result(trainable, step, done)
            if should_stop is not None and should_stop():
                raise Cancelled(result(trainable, step, done))
            loss = _motion_loss(features, points, goals, motion_patch, res)
            if keep is not None:
                assert start_features is not None
                loss = loss + mask_weight * F.l1_loss(features * keep, start_features * keep)
            if guide is not None:
                loss = loss + cfg.guide_weight * F.l1_loss(features, guide)
            if not loss.requires_grad:  # every handle is on its target: nothing left to pull
                return result(trainable, step, done)
            (grad,) = torch.autograd.grad(loss, [trainable])
            previous = trainable.detach().clone()
            trainable.grad = grad
            optimizer.step()
            try:
                picture = on_step is not None and (step + 1) % preview_every == 0
                features, tracking, image = render(trainable, picture)
            except FloatingPointError:  # the step broke the picture: keep the one before
                with torch.no_grad():
                    trainable.copy_(previous)
                return result(trainable, step, done)
            step += 1


def _motion_loss(
    features: torch.Tensor,
    points: torch.Tensor,
    goals: torch.Tensor,
    patch: torch.Tensor,
    resolution: int,
) -> torch.Tensor:
    """DragGAN eq. 1: features one unit step towards the target match today's, detached."""
    loss = features.new_zeros(())
    for point, goal in zip(points, goals, strict=True):
        direction = goal - point
        length = direction.norm()
        if length < 1e-3:
            continue
        step = direction / max(length, 1.0)  # a unit step, shorter at the end not to overshoot
        here = (point + patch).clamp(0, resolution - 1)
        there = _sample(features, here + step, resolution)
        loss = loss + F.l1_loss(there, _sample(features, here, resolution).detach())
    return loss


def _as_points(points: torch.Tensor) -> tuple[Point, ...]:
    return tuple((float(x), float(y)) for x, y in points.tolist())
