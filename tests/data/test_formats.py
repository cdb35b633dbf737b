"""Every format reader on fixtures written in the exact on-disk format, decoded values checked by hand."""

from pathlib import Path

import cv2
import numpy as np
from data_writers import (
    gradient_image,
    write_cjdata_mat,
    write_class_folders,
    write_covid_radiography,
    write_dicom,
    write_jpeg,
    write_png,
)

from heatlens.data import build_datamodule
from heatlens.data.decode import DecodeOptions, Source, load_image, load_mask
from heatlens.data.pixels import Placement


def _image(path: Path, size: int, channels: int) -> np.ndarray:
    return load_image(Source(path), DecodeOptions(size, channels))[0]


def _config(name: str, root: Path, **extra) -> dict:
    return {"name": name, "root": str(root), "image_size": 32, "channels": 1, "batch_size": 4, "num_workers": 0,
            "augment": {}, "seed": 0, **extra}


def _decoded(dm, split: str) -> dict[str, np.ndarray]:
    """id -> decoded (unnormalised) uint8 image of one split, read through the DataModule."""
    dataset = dm._dataset(split)
    out = {}
    for i in range(len(dataset)):
        item = dataset[i]
        out[dataset.ids[i]] = np.rint(dm.denormalize(item["image"][None])[0].numpy() * 255).astype(np.uint8)
    return out


def test_png_8_and_16_bit_grey_rgb_rgba_and_jpeg(tmp_path: Path):
    grey = gradient_image(32, seed=1)
    write_png(tmp_path / "grey8.png", grey)
    wide = np.array([[0, 1000], [3000, 4000]], dtype=np.uint16)  # 12-bit data in a 16-bit PNG
    write_png(tmp_path / "grey16.png", wide)
    rgb = np.stack([grey, grey // 2, 255 - grey], axis=2)
    write_png(tmp_path / "rgb.png", rgb)
    write_png(tmp_path / "rgba.png", np.concatenate([rgb, np.full((32, 32, 1), 7, np.uint8)], axis=2))
    write_jpeg(tmp_path / "rgb.jpg", rgb)

    assert np.array_equal(_image(tmp_path / "grey8.png", 32, 1)[..., 0], grey)
    # Min-max over the stored range: 0 -> 0, 4000 -> 255, 1000 -> 63.75.
    expected = np.rint(np.array([[0, 1000], [3000, 4000]]) * 255 / 4000).astype(np.uint8)
    assert np.array_equal(_image(tmp_path / "grey16.png", 2, 1)[..., 0], expected)
    as_rgb = _image(tmp_path / "rgb.png", 32, 3)
    assert np.array_equal(as_rgb, rgb)  # channel order kept (OpenCV's BGR undone)
    luma = np.rint(0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2])
    assert np.abs(_image(tmp_path / "rgb.png", 32, 1)[..., 0] - luma).max() <= 1
    assert np.array_equal(_image(tmp_path / "rgba.png", 32, 3), rgb)  # alpha dropped
    assert np.abs(_image(tmp_path / "rgb.jpg", 32, 3).astype(int) - rgb).mean() < 3
    grey_as_rgb = _image(tmp_path / "grey8.png", 32, 3)
    assert grey_as_rgb.shape == (32, 32, 3) and np.array_equal(grey_as_rgb[..., 2], grey)


def test_resize_to_image_size_and_mask_of_another_size(tmp_path: Path):
    image = gradient_image(64, seed=0)
    write_png(tmp_path / "big.png", image)
    small = _image(tmp_path / "big.png", 32, 1)[..., 0]
    assert np.array_equal(small, cv2.resize(image, (32, 32), interpolation=cv2.INTER_AREA))
    mask = np.zeros((20, 20), np.uint8)
    mask[:10, :5] = 255
    write_png(tmp_path / "mask.png", mask)
    resized = load_mask(Source(tmp_path / "mask.png"), Placement.fit(20, 20, 40, "pad"))
    expected = np.zeros((40, 40), np.uint8)
    expected[:20, :10] = 1
    assert np.array_equal(resized, expected)


def test_covid_radiography_layout_with_masks_of_another_size(tmp_path: Path):
    root = write_covid_radiography(tmp_path / "db", {"COVID": 6, "Normal": 10}, image_size=40, mask_size=32)
    dm = build_datamodule(_config("covid_radiography", root, split=[0.5, 0.25, 0.25]))
    assert dm.class_names == ["COVID", "Normal"] and dm.mask_kinds == ["lung"]
    dm.setup()
    batch = next(iter(dm.test_dataloader()))
    lung = batch["masks"]["lung"]
    assert lung.shape == (len(batch["label"]), 1, 32, 32) and lung.dtype.__str__() == "torch.uint8"
    expected = np.zeros((32, 32), np.uint8)
    expected[:16, :8] = 1  # the 32 px mask's block, still the top half / left quarter at 32 px
    assert all(np.array_equal(m[0].numpy(), expected) for m in lung)
    first = dm.test_dataset.ids[0]
    assert first.split("/")[1] == "images" and first.endswith(".png")


def test_image_folder_mixed_formats(tmp_path: Path):
    root = tmp_path / "folders"
    write_class_folders(root, {"a": 5, "b": 5}, size=32)
    write_jpeg(root / "a" / "deeper" / "extra.jpg", gradient_image(48, seed=9))
    write_dicom(root / "b" / "scan.dcm", gradient_image(32, seed=3, dtype=np.uint16))
    dm = build_datamodule(_config("image_folder", root, split=[0.6, 0.2, 0.2]))
    assert dm.class_names == ["a", "b"] and dm.mask_kinds == []
    dm.setup()
    all_ids = sum(dm.split_ids.values(), [])
    assert sorted(all_ids) == sorted([f"a/img_{i:03d}.png" for i in range(5)] + ["a/deeper/extra.jpg"]
                                     + [f"b/img_{i:03d}.png" for i in range(5)] + ["b/scan.dcm"])
    decoded = {**_decoded(dm, "train"), **_decoded(dm, "val"), **_decoded(dm, "test")}
    assert np.array_equal(decoded["a/img_000.png"][0], gradient_image(32, seed=0))
    batch = next(iter(dm.train_dataloader()))
    assert batch["masks"] == {}


def test_split_folders_honours_predefined_splits_and_carves_val(tmp_path: Path):
    root = tmp_path / "chest_xray"
    for split, count in (("train", 10), ("test", 4)):
        write_class_folders(root / split, {"NORMAL": count, "PNEUMONIA": count}, size=32)
    dm = build_datamodule(_config("split_folders", root, healthy_class="NORMAL"))
    dm.setup()
    assert dm.class_names == ["NORMAL", "PNEUMONIA"] and dm.healthy_class == "NORMAL"
    assert all(i.startswith("test/") for i in dm.split_ids["test"]) and len(dm.split_ids["test"]) == 8
    assert all(i.startswith("train/") for i in dm.split_ids["train"] + dm.split_ids["val"])
    # val carved from train by 0.1 / (0.8 + 0.1) of 20 -> 2 images, one per class
    assert len(dm.split_ids["val"]) == 2 and sorted(dm.val_dataset.labels) == [0, 1]

    write_class_folders(root / "val", {"NORMAL": 2, "PNEUMONIA": 2}, size=32)
    given = build_datamodule(_config("split_folders", root))
    given.setup()
    assert sorted(given.split_ids["val"]) == sorted(f"val/{c}/img_{i:03d}.png" for c in ("NORMAL", "PNEUMONIA")
                                                    for i in range(2))


def test_csv_manifest_with_mask_group_and_split(tmp_path: Path):
    root = write_class_folders(tmp_path / "csvset", {"x": 4, "y": 4}, size=32)
    mask = np.zeros((32, 32), np.uint8)
    mask[4:8, 4:8] = 1
    write_png(root / "m.png", mask)
    lines = ["path,label,mask,group,split"]
    for i in range(4):
        for c in ("x", "y"):
            split = ["train", "train", "val", "test"][i]
            lines.append(f"{c}/img_{i:03d}.png,{c},{'m.png' if i == 0 else ''},p{i},{split}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    dm = build_datamodule(_config("csv", root, classes=["y", "x"], mask_kind="lesion"))
    dm.setup()
    assert dm.class_names == ["y", "x"] and dm.mask_kinds == ["lesion"]
    assert sorted(dm.split_ids["test"]) == ["x/img_003.png", "y/img_003.png"]
    train = dm.train_dataset
    lesion = {train.ids[i]: train[i]["masks"]["lesion"][0].numpy() for i in range(len(train))}
    assert lesion["x/img_000.png"].sum() == 16 and lesion["x/img_001.png"].sum() == 0
    assert train.labels[train.ids.index("y/img_000.png")] == 0


def test_coronahack_mapping_min_class_size_and_splits(tmp_path: Path):
    root = tmp_path / "coronahack"
    rows = ["X_ray_image_name,Label,Dataset_type,Label_1_Virus_category,Label_2_Virus_category"]
    spec = [("Normal", "", ""), ("Pnemonia", "bacteria", ""), ("Pnemonia", "Virus", ""),
            ("Pnemonia", "Virus", "COVID-19")]
    counter = 0
    for label, cat1, cat2 in spec:
        for dataset_type in ("TRAIN",) * 4 + ("TEST",) * 2:
            counter += 1
            name = f"img{counter}.jpeg"
            write_jpeg(root / dataset_type.lower() / name, gradient_image(32, seed=counter))
            rows.append(f"{name},{label},{dataset_type},{cat1},{cat2}")
    rows.append("rare.jpeg,Pnemonia,TRAIN,Stress-Smoking,ARDS")
    write_jpeg(root / "train" / "rare.jpeg", gradient_image(32, seed=0))
    (root / "Chest_xray_Corona_Metadata.csv").write_text("\n".join(rows) + "\n")

    everything = build_datamodule(_config("coronahack", root))
    assert everything.class_names == ["normal", "bacteria", "virus", "covid", "ards"]
    dm = build_datamodule(_config("coronahack", root, min_class_size=2, healthy_class="normal"))
    dm.setup()
    assert dm.class_names == ["normal", "bacteria", "virus", "covid"]
    assert all(i.startswith("test/") for i in dm.split_ids["test"]) and len(dm.split_ids["test"]) == 8
    covid = [i for i, y in zip(dm.test_dataset.ids, dm.test_dataset.labels) if y == 3]
    assert len(covid) == 2


def test_brain_tumor_mat_v73(tmp_path: Path):
    root = tmp_path / "figshare"
    truth = {}
    for i in range(1, 13):
        image = gradient_image(48, seed=i, dtype=np.int16)
        mask = np.zeros((48, 48), np.uint8)
        mask[6:18, 30:42] = 1  # top-right: orientation errors would move it
        label = (i % 3) + 1
        write_cjdata_mat(root / f"part{i % 2}" / f"{i}.mat", image, label, pid=f"MRN{i // 2}", mask=mask)
        truth[f"part{i % 2}/{i}.mat"] = (image, label)
    dm = build_datamodule(_config("brain_tumor", root, image_size=48, split=[0.5, 0.25, 0.25]))
    assert dm.class_names == ["meningioma", "glioma", "pituitary"] and dm.mask_kinds == ["tumor"]
    dm.setup()
    groups = {s.id: s.group for s in dm.listing().samples}
    assert groups["part1/3.mat"] == "MRN1"
    patients = {split: {groups[i] for i in ids} for split, ids in dm.split_ids.items()}
    assert not patients["train"] & patients["val"] and not patients["train"] & patients["test"]
    assert not patients["val"] & patients["test"]
    dataset = dm.train_dataset
    item = dataset[0]
    image, label = truth[dataset.ids[0]]
    expected = np.rint((image - image.min()) / (image.max() - image.min()) * 255)
    got = dm.denormalize(item["image"][None])[0, 0].numpy() * 255
    assert np.abs(got - expected).max() <= 1
    assert dataset.labels[0] == label - 1
    tumour = item["masks"]["tumor"][0].numpy()
    assert tumour[6:18, 30:42].all() and tumour.sum() == 144
