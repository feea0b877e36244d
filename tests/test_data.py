"""Datasets against real files where we have them, and synthetic files in the official layouts otherwise."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import png
import pytest
import torch
from PIL import Image

from conftest import CAMVID, CITYSCAPES, needs_camvid, needs_cityscapes
from distilkit.data import build_dataset
from distilkit.data.loader import SeededStream
from distilkit.data.synth import SYNTH_CLASSES
from distilkit.data.transforms import AugmentConfig, train_transform
from distilkit.errors import DistilkitError


def save_png(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path) if mode else Image.fromarray(array).save(path)


def rgb(h=8, w=12, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


# ---- Cityscapes ------------------------------------------------------------------------------------
@needs_cityscapes
def test_cityscapes_real_frame_matches_official_train_ids():
    ds = build_dataset("cityscapes", "val", CITYSCAPES)
    assert len(ds) == 1 and ds.info.num_classes == 19
    image, label = ds.load(0)
    assert image.shape == (128, 256, 3) and label.shape == (128, 256)
    official = np.asarray(Image.open(next(CITYSCAPES.glob("gtFine/val/*/*_labelTrainIds.png"))))
    # The fixture's README: its two label files were resized independently and differ on 77 boundary pixels.
    assert (label != official).sum() <= 77
    assert set(np.unique(label)) <= set(range(19)) | {255}


def test_cityscapes_layout_mapping_and_bad_values(tmp_path):
    ids = np.array([[7, 8, 26, 0], [33, 23, 1, 24]], dtype=np.uint8)
    save_png(tmp_path / "leftImg8bit/val/aachen/a_000000_000001_leftImg8bit.png", rgb(2, 4))
    save_png(tmp_path / "gtFine/val/aachen/a_000000_000001_gtFine_labelIds.png", ids)
    _, label = build_dataset("cityscapes", "val", tmp_path).load(0)
    assert label.tolist() == [[0, 1, 13, 255], [18, 10, 255, 11]]
    save_png(tmp_path / "gtFine/val/aachen/a_000000_000001_gtFine_labelIds.png", ids + 40)
    with pytest.raises(DistilkitError, match="label .* value"):
        build_dataset("cityscapes", "val", tmp_path).load(0)


def test_default_subfolder_and_missing_root(tmp_path):
    save_png(tmp_path / "cityscapes/leftImg8bit/train/x/x_0_0_leftImg8bit.png", rgb())
    assert len(build_dataset("cityscapes", "train", tmp_path)) == 1  # finds root/cityscapes
    with pytest.raises(DistilkitError, match="expected leftImg8bit"):
        build_dataset("cityscapes", "train", tmp_path / "nowhere")
    with pytest.raises(DistilkitError, match="unknown dataset 'kitti'"):
        build_dataset("kitti", "train", tmp_path)


# ---- GTA5 and SYNTHIA ------------------------------------------------------------------------------
def test_gta_palette_labels(tmp_path):
    lab = Image.fromarray(np.array([[7, 26, 34, 0]], dtype=np.uint8), "P")
    lab.putpalette([0] * 768)
    save_png(tmp_path / "images/00001.png", rgb(1, 4))
    (tmp_path / "labels").mkdir()
    lab.save(tmp_path / "labels/00001.png")
    ds = build_dataset("gta", "train", tmp_path)
    assert ds.load(0)[1].tolist() == [[0, 13, 255, 255]]  # 34 (licence plate) is ignored, not an error


def test_synthia_16bit_first_channel(tmp_path):
    first = np.array([[3, 21, 22, 1, 10, 300]], dtype=np.uint16)  # 22 (lanemarking) and 300: ignored
    planes = np.stack([first, np.full_like(first, 999), np.zeros_like(first)], -1)
    (tmp_path / "GT/LABELS").mkdir(parents=True)
    with open(tmp_path / "GT/LABELS/0000001.png", "wb") as f:
        png.Writer(6, 1, greyscale=False, bitdepth=16).write(f, planes.reshape(1, -1).tolist())
    save_png(tmp_path / "RGB/0000001.png", rgb(1, 6))
    ds = build_dataset("synthia", "train", tmp_path)
    assert ds.load(0)[1].tolist() == [[0, 3, 255, 10, 11, 255]]
    assert len(ds.info.eval_classes) == 16 and 9 not in ds.info.eval_classes


# ---- CamVid ----------------------------------------------------------------------------------------
@needs_camvid
def test_camvid_real_sequences():
    day, dusk = build_dataset("camvid-day", "train", CAMVID), build_dataset("camvid-dusk", "train", CAMVID)
    assert (len(day), len(dusk), len(build_dataset("camvid", "train", CAMVID))) == (305, 62, 367)
    assert len(build_dataset("camvid-day", "val", CAMVID)) == 101
    image, label = dusk.load(0)
    assert image.shape == (360, 480, 3) and label.shape == (360, 480)
    assert set(np.unique(label)) <= set(range(11)) | {255}
    assert image.mean() < day.load(0)[0].mean()  # dusk is darker: the domain shift is real
    with pytest.raises(
        DistilkitError, match="no frames of sequences 0001TP; they are in split train: use --split train"
    ):
        build_dataset("camvid-dusk", "val", CAMVID)


def test_camvid_layout_ignore_and_out_of_range(tmp_path):
    save_png(tmp_path / "train/0006R0_000001.png", rgb(1, 3))
    save_png(tmp_path / "trainannot/0006R0_000001.png", np.array([[0, 10, 11]], dtype=np.uint8))
    (tmp_path / "val").mkdir()
    assert build_dataset("camvid", "train", tmp_path).load(0)[1].tolist() == [[0, 10, 255]]
    save_png(tmp_path / "trainannot/0006R0_000001.png", np.array([[0, 12, 1]], dtype=np.uint8))
    with pytest.raises(DistilkitError, match="12"):
        build_dataset("camvid", "train", tmp_path).load(0)


# ---- VOC and folder --------------------------------------------------------------------------------
def test_voc_layout(tmp_path):
    voc = tmp_path / "VOCdevkit/VOC2007"
    (voc / "ImageSets/Segmentation").mkdir(parents=True)
    (voc / "ImageSets/Segmentation/train.txt").write_text("2007_000001\n")
    (voc / "JPEGImages").mkdir()
    Image.fromarray(rgb(2, 2)).save(voc / "JPEGImages/2007_000001.jpg")
    save_png(voc / "SegmentationClass/2007_000001.png", np.array([[0, 15], [255, 20]], dtype=np.uint8))
    ds = build_dataset("voc", "train", tmp_path)
    assert ds.info.num_classes == 21 and ds.info.class_names[15] == "person"
    assert ds.load(0)[1].tolist() == [[0, 15], [255, 20]]
    with pytest.raises(DistilkitError, match="split 'val' missing"):
        build_dataset("voc", "val", tmp_path)


def test_folder_dataset_and_size_mismatch(tiny_data, tmp_path):
    ds = build_dataset("folder", "train", tiny_data)
    assert len(ds) == 6 and ds.info.class_names[0] == "road"
    image, label = ds.load(0)
    assert image.shape[:2] == label.shape
    bad = tmp_path / "bad"
    save_png(bad / "images/a.png", rgb(4, 4))
    save_png(bad / "masks/a.png", np.zeros((5, 4), np.uint8))
    (bad / "classes.yaml").write_text("names: [a, b]\n")
    with pytest.raises(DistilkitError, match="is 4x5 but image"):
        build_dataset("folder", "train", bad).load(0)


def test_corrupt_image_names_the_file(tiny_data, tmp_path):
    bad = tmp_path / "corrupt"
    (bad / "images").mkdir(parents=True)
    (bad / "images/a.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    save_png(bad / "masks/a.png", np.zeros((4, 4), np.uint8))
    (bad / "classes.json").write_text('{"names": ["a"]}')
    with pytest.raises(DistilkitError, match="cannot read image .*a.png"):
        build_dataset("folder", "train", bad).load(0)


# ---- synthetic domains -----------------------------------------------------------------------------
def test_synth_domains_deterministic_and_distinct():
    gta, city = build_dataset("synth-gta", "train"), build_dataset("synth-city", "train")
    a, b = gta.load(3), gta.load(3)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert a[0].shape == (128, 256, 3)
    assert set(np.unique(a[1])) <= set(SYNTH_CLASSES)
    assert not np.array_equal(build_dataset("synth-gta", "val").load(3)[1], a[1])  # splits differ
    # Same label space, different look: the camera domain is noisier (texture + sensor noise).
    lap = lambda im: np.abs(np.diff(im.astype(float), axis=1)).mean()  # noqa: E731
    assert lap(city.load(0)[0]) > 1.5 * lap(a[0])


# ---- transforms and sampling -----------------------------------------------------------------------
def test_train_transform_is_seeded_and_keeps_labels_aligned():
    image = np.zeros((40, 60, 3), np.uint8)
    image[:, 30:] = 255
    label = np.zeros((40, 60), np.int64)
    label[:, 30:] = 1
    aug = AugmentConfig(jitter=0.0)
    out1 = train_transform(image, label, (32, 32), aug, torch.Generator().manual_seed(5))
    out2 = train_transform(image, label, (32, 32), aug, torch.Generator().manual_seed(5))
    assert torch.equal(out1[0], out2[0]) and torch.equal(out1[1], out2[1])
    img, lbl = out1
    assert img.shape == (3, 32, 32) and lbl.shape == (32, 32)
    assert set(lbl.unique().tolist()) <= {0, 1, 255}
    valid = lbl != 255
    bright = img.mean(0) > 0.5
    assert (bright[valid] == (lbl[valid] == 1)).float().mean() > 0.95  # white pixels carry label 1


def test_seeded_stream_resumes_and_shards():
    full = SeededStream(10, seed=3, batch=4)
    it = iter(full)
    first = [next(it) for _ in range(25)]
    later = iter(SeededStream(10, seed=3, batch=4, start_step=3))
    assert [next(later) for _ in range(13)] == first[12:]
    ranks = [iter(SeededStream(10, seed=3, batch=2, rank=r, world=2)) for r in (0, 1)]
    a, b = [next(ranks[0]) for _ in range(5)], [next(ranks[1]) for _ in range(5)]
    assert sorted(i for i, _ in a + b) == list(range(10))  # the ranks split one epoch between them
    fresh = [iter(SeededStream(10, seed=3, batch=2, rank=r, world=2)) for r in (0, 1)]
    two = [[next(fresh[r]) for _ in range(12)] for r in (0, 1)]  # 2 ranks x batch 2 = one process x batch 4
    for step in range(6):  # the same samples, with the same augmentation seeds, in every global batch
        assert sorted(two[0][2 * step : 2 * step + 2] + two[1][2 * step : 2 * step + 2]) == sorted(
            first[4 * step : 4 * step + 4]
        )


def test_collective_epoch_orders_are_asked_for_at_the_same_step_on_every_rank():
    """An epoch of 3 samples and global batches of 4: rank 1 meets epoch 1 in global batch 0, rank 0 only in
    global batch 1; both must ask for epoch 1's order before yielding the first sample of global batch 0."""
    asked: dict[int, list[tuple[int, int]]] = {0: [], 1: []}
    for r in (0, 1):
        yielded = [0]

        def order(epoch: int, r=r, yielded=yielded) -> list[int]:
            asked[r].append((epoch, yielded[0]))  # the epoch, and how many samples this rank had yielded
            return [0, 1, 2]

        it = iter(SeededStream(3, seed=0, batch=2, rank=r, world=2, indices=order))
        for _ in range(6):
            next(it)
            yielded[0] += 1
    assert asked[0] == asked[1] == [(0, 0), (1, 0), (2, 2), (3, 4)]


def test_hue_rotation_and_greyscale_change_colour_only():
    """Hue rotation keeps each pixel's brightness order and its grey pixels grey; greyscale makes R = G = B;
    both off draw nothing from the generator (same crops as before they existed)."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    image[:, :8] = 128  # a grey band: no hue to rotate
    label = rng.integers(0, 3, (32, 48))
    geo = AugmentConfig(scale=(1.0, 1.0), flip=False, jitter=0.0)
    plain, lbl = train_transform(image, label, (32, 48), geo, torch.Generator().manual_seed(1))
    hue, lbl_h = train_transform(image, label, (32, 48), replace(geo, hue=0.5), torch.Generator().manual_seed(1))
    grey, _ = train_transform(image, label, (32, 48), replace(geo, grey=1.0), torch.Generator().manual_seed(1))
    assert torch.equal(lbl, lbl_h)
    assert not torch.allclose(hue, plain, atol=0.05)  # colours moved
    assert torch.allclose(hue[:, :, :8], plain[:, :, :8], atol=1e-3)  # grey stays grey
    assert torch.allclose(hue.max(0).values, plain.max(0).values, atol=1e-3)  # HSV value is kept
    assert torch.allclose(grey[0], grey[1]) and torch.allclose(grey[1], grey[2])
    expected = 0.299 * plain[0] + 0.587 * plain[1] + 0.114 * plain[2]
    assert torch.allclose(grey[0], expected, atol=1e-2)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    train_transform(image, label, (32, 48), AugmentConfig(), g1)
    train_transform(image, label, (32, 48), AugmentConfig(hue=0.0, grey=0.0), g2)
    assert torch.equal(g1.get_state(), g2.get_state())
