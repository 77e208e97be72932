"""The training data pipeline: decoding, caching, bad files, labels CSV, data order."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models.training import images as data_module
from models.training.images import EpochSampler, Preprocess, list_images, prepare_images
from models.training.labels import read_labels, split_indices


def solid(color: tuple[int, ...], size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    return Image.new(mode, size, color)


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    """Good images of several sizes and modes, plus a corrupt file and a text file."""
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    solid((200, 10, 10), (40, 30)).save(folder / "a_rgb_wide.jpg", quality=100)
    solid((90,), (17, 17), "L").save(folder / "b_gray.png")
    solid((10, 200, 10, 0), (20, 20), "RGBA").save(folder / "c_transparent.png")
    palette = solid((0,), (12, 30), "P")
    palette.putpalette([10, 20, 250] + [0] * 765)
    palette.save(folder / "sub" / "d_palette.gif")
    (folder / "e_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.png").write_bytes(b"ignored")
    return folder


def test_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images found"):
        prepare_images(tmp_path / "empty", 8, cache_root=tmp_path / "cache")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        prepare_images(tmp_path / "missing", 8, cache_root=tmp_path / "cache")


def test_mixed_sizes_and_modes_decode_and_corrupt_files_are_counted(
    mixed_folder: Path, tmp_path: Path
) -> None:
    dataset = prepare_images(mixed_folder, 8, cache_root=tmp_path / "cache")
    assert dataset.names == (
        "a_rgb_wide.jpg",
        "b_gray.png",
        "c_transparent.png",
        "sub/d_palette.gif",
    )
    assert dataset.images.shape == (4, 8, 8, 3) and dataset.images.dtype == np.uint8
    assert [name for name, _ in dataset.skipped] == ["e_corrupt.jpg"]
    assert "unreadable" in dataset.skipped[0][1]
    # Solid colours survive crop + resize; grey is replicated; transparency becomes white.
    expected = {0: (200, 10, 10), 1: (90, 90, 90), 2: (255, 255, 255), 3: (10, 20, 250)}
    for index, rgb in expected.items():
        np.testing.assert_allclose(dataset.images[index].reshape(-1, 3).mean(0), rgb, atol=3)
    assert dataset.summary()["skipped"] == 1


def test_every_image_corrupt_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="none of the 3 images could be read"):
        prepare_images(folder, 8, cache_root=tmp_path / "cache")


def test_centre_crop_keeps_the_middle_of_wide_images(tmp_path: Path) -> None:
    folder = tmp_path / "wide"
    folder.mkdir()
    image = Image.new("RGB", (30, 10), (255, 0, 0))
    image.paste((0, 0, 255), (10, 0, 20, 10))  # the central 10x10 square is blue
    image.save(folder / "wide.png")
    dataset = prepare_images(folder, 10, cache_root=tmp_path / "cache")
    np.testing.assert_array_equal(dataset.images[0], np.full((10, 10, 3), (0, 0, 255), np.uint8))


def test_cache_is_reused_and_invalidated_by_changes(
    mixed_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = prepare_images(mixed_folder, 8, cache_root=tmp_path / "cache")

    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cache should have been used")

    with monkeypatch.context() as patch:
        patch.setattr(data_module, "load_square_rgb", no_decoding)
        second = prepare_images(mixed_folder, 8, cache_root=tmp_path / "cache")
    np.testing.assert_array_equal(first.images, second.images)
    assert second.cache_path == first.cache_path

    solid((1, 2, 3), (9, 9)).save(mixed_folder / "f_new.png")
    third = prepare_images(mixed_folder, 8, cache_root=tmp_path / "cache")
    assert len(third) == 5 and third.cache_path != first.cache_path


def test_zip_source_matches_folder(mixed_folder: Path, tmp_path: Path) -> None:
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(mixed_folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(mixed_folder).as_posix())
        zf.writestr("__MACOSX/._a_rgb_wide.jpg", b"resource fork")
    from_folder = prepare_images(mixed_folder, 8, cache_root=tmp_path / "cache")
    from_zip = prepare_images(archive, 8, cache_root=tmp_path / "cache")
    assert from_zip.names == from_folder.names
    np.testing.assert_array_equal(from_zip.images, from_folder.images)


def test_preprocess_can_drop_images_and_is_part_of_the_cache_key(
    mixed_folder: Path, tmp_path: Path
) -> None:
    def only_colour(image: Image.Image) -> Image.Image | None:
        return (
            None
            if len(set(image.getpixel((0, 0)))) == 1
            else image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        )

    plain = prepare_images(mixed_folder, 8, cache_root=tmp_path / "cache")
    processed = prepare_images(
        mixed_folder,
        8,
        preprocess=Preprocess("test-v1", only_colour),
        cache_root=tmp_path / "cache",
    )
    assert processed.cache_path != plain.cache_path
    assert "b_gray.png" not in processed.names and "c_transparent.png" not in processed.names
    reasons = dict(processed.skipped)
    assert "dropped by preprocessing" in reasons["b_gray.png"]


def test_batches_are_float_in_minus_one_to_one(mixed_folder: Path, tmp_path: Path) -> None:
    dataset = prepare_images(mixed_folder, 8, cache_root=tmp_path / "cache")
    batch = dataset.batch([3, 0, 3])
    assert batch.shape == (3, 3, 8, 8)
    expected = dataset.images[[3, 0, 3]].astype(np.float32).transpose(0, 3, 1, 2) / 127.5 - 1
    np.testing.assert_allclose(batch.numpy(), expected, atol=1e-6)


def test_epoch_sampler_visits_every_item_once_per_epoch_and_is_deterministic() -> None:
    sampler = EpochSampler(10, 4, seed=3)
    order = np.concatenate([sampler.batch(step) for step in range(5)])  # 20 items = 2 epochs
    assert sorted(order[:10].tolist()) == list(range(10))
    assert sorted(order[10:].tolist()) == list(range(10))
    assert order[:10].tolist() != order[10:].tolist()
    again = EpochSampler(10, 4, seed=3)
    np.testing.assert_array_equal(again.batch(3), sampler.batch(3))  # random access = sequential


# ---------------------------------------------------------------------------------------------
# Labels


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text.strip() + "\n", encoding="utf-8")
    return path


NAMES = ("a.jpg", "b.jpg", "sub/c.jpg", "d.jpg")


def test_labels_join_by_name_and_report_missing_files(tmp_path: Path) -> None:
    csv_path = write_csv(
        tmp_path / "labels.csv",
        """
filename,Smiling,age,comment
a.jpg,1,30,ok
c.jpg,0,41.5,fine
zzz.jpg,1,20,no such file
d.jpg,,70,missing smile
""",
    )
    table = read_labels(csv_path, NAMES)
    assert table.columns == ("Smiling", "age")
    assert table.binary == (True, False)
    assert table.image_index.tolist() == [0, 2, 3]
    np.testing.assert_array_equal(table.values[:2], [[1, 30], [0, 41.5]])
    assert np.isnan(table.values[2, 0]) and table.values[2, 1] == 70
    report = table.report
    assert (
        report.missing_files == ("zzz.jpg",)
        and report.matched == 3
        and report.unlabelled_images == 1
    )
    assert "not numeric" in report.skipped_columns["comment"]
    assert "zzz.jpg" in report.describe()


def test_non_numeric_value_in_a_chosen_column_names_the_line(tmp_path: Path) -> None:
    csv_path = write_csv(
        tmp_path / "labels.csv",
        """
file,age
a.jpg,30
b.jpg,thirty
""",
    )
    with pytest.raises(ValueError, match=r"line 3, column 'age': 'thirty' is not a number"):
        read_labels(csv_path, NAMES, columns=["age"])
    with pytest.raises(ValueError, match="no column 'Smiling'"):
        read_labels(csv_path, NAMES, columns=["Smiling"])


def test_labels_that_match_no_image_are_an_error(tmp_path: Path) -> None:
    csv_path = write_csv(tmp_path / "labels.csv", "filename,x\nq.jpg,1\n")
    with pytest.raises(ValueError, match="none of its 1 rows"):
        read_labels(csv_path, NAMES)


def test_minus_one_plus_one_columns_become_binary_and_rows_can_be_skipped(tmp_path: Path) -> None:
    csv_path = write_csv(
        tmp_path / "labels.csv",
        """
filename,Young,duplicate_of
a.jpg,-1,
b.jpg,1,a.jpg
d.jpg,1,
""",
    )
    table = read_labels(csv_path, NAMES, columns=["Young"], skip_rows_with="duplicate_of")
    assert table.binary == (True,)
    assert table.values[:, 0].tolist() == [0.0, 1.0]
    assert table.image_index.tolist() == [0, 3] and table.report.dropped_rows == 1


def test_group_split_never_shares_a_group(tmp_path: Path) -> None:
    labels = write_csv(
        tmp_path / "labels.csv", "filename,x\n" + "\n".join(f"{i}.jpg,{i % 2}" for i in range(40))
    )
    ids = write_csv(
        tmp_path / "identity.csv",
        "filename,identity\n" + "\n".join(f"{i}.jpg,{i // 4}" for i in range(40)),
    )
    names = [f"{i}.jpg" for i in range(40)]
    table = read_labels(labels, names, group_column="identity", group_file=ids)
    assert table.groups is not None
    train, val = split_indices(len(table.image_index), 0.2, seed=0, groups=table.groups)
    assert len(train) + len(val) == 40 and len(val) == 8  # 2 of 10 groups of 4
    assert not {table.groups[i] for i in train} & {table.groups[i] for i in val}


def test_list_images_skips_hidden_and_non_images(mixed_folder: Path) -> None:
    names = [entry.name for entry in list_images(mixed_folder)]
    assert ".hidden.png" not in names and "notes.txt" not in names
    assert "sub/d_palette.gif" in names
