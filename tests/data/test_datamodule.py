"""The DataModule contract on the phantom and on fixtures; transforms; the conf/data files."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from data_writers import write_block_images
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from heatlens.data import build_datamodule
from heatlens.data.settings import parse_settings
from heatlens.paths import CONFIG_DIR

PHANTOM = {**OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "data_common.yaml")),
           **OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "data" / "phantom.yaml")),
           "num_images": 80, "source_size": 48, "image_size": 32, "batch_size": 8}
PHANTOM.pop("defaults")


@pytest.fixture(scope="module")
def phantom_dm():
    dm = build_datamodule(PHANTOM, mean=(0.4,), std=(0.2,))
    dm.prepare_data()
    dm.setup("fit")
    return dm


def test_phantom_batches_follow_the_interface(phantom_dm):
    dm = phantom_dm
    assert dm.class_names == ["COVID", "Lung_Opacity", "Normal", "Viral Pneumonia"] and dm.num_classes == 4
    assert dm.healthy_class == "Normal" and dm.mask_kinds == ["lung", "lesion"]
    assert (dm.channels, dm.image_size, dm.mean, dm.std) == (1, 32, (0.4,), (0.2,))
    assert dm.class_weights is None
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (8, 1, 32, 32) and batch["image"].dtype == torch.float32
    assert batch["label"].dtype == torch.int64 and batch["index"].dtype == torch.int64
    for kind in ("lung", "lesion"):
        mask = batch["masks"][kind]
        assert mask.shape == (8, 1, 32, 32) and mask.dtype == torch.uint8 and set(mask.unique().tolist()) <= {0, 1}
    assert [len(dm.split_ids[s]) for s in ("train", "val", "test")] == [64, 8, 8]


def test_index_ids_labels_and_test_hash_agree(phantom_dm):
    dm = phantom_dm
    test = dm.test_dataset
    for batch in dm.test_dataloader():
        for index, label in zip(batch["index"].tolist(), batch["label"].tolist()):
            assert test.ids[index].split("/")[0] == dm.class_names[label] == dm.class_names[test.labels[index]]
    assert test.ids == dm.split_ids["test"]
    assert dm.test_hash == hashlib.sha256("\n".join(sorted(test.ids)).encode()).hexdigest()
    assert not set(dm.split_ids["train"]) & set(dm.split_ids["test"])


def test_evaluation_is_deterministic_and_denormalize_inverts(phantom_dm):
    dm = phantom_dm
    first = [b["image"] for b in dm.val_dataloader()]
    second = [b["image"] for b in dm.val_dataloader()]
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    cached = dm._cache().images()
    restored = dm.denormalize(dm.val_dataset[0]["image"][None])[0, 0].numpy() * 255
    assert np.abs(restored - cached[dm.val_dataset.rows[0], ..., 0]).max() < 1e-3


def test_same_config_same_splits_and_other_seed_other_splits(phantom_dm):
    again = build_datamodule(PHANTOM, mean=(0.4,), std=(0.2,))
    again.setup()
    assert again.split_ids == phantom_dm.split_ids and again.test_hash == phantom_dm.test_hash
    other = build_datamodule({**PHANTOM, "seed": 7}, mean=(0.4,), std=(0.2,))
    other.setup()
    assert other.test_hash != phantom_dm.test_hash


def test_two_ratios_serve_the_held_out_set_as_val_and_test():
    dm = build_datamodule({**PHANTOM, "split": [0.75, 0.25]})
    dm.setup()
    assert dm.split_ids["val"] == dm.split_ids["test"] and len(dm.split_ids["test"]) == 20
    assert len(dm.split_ids["train"]) == 60


def test_balance_modes_and_three_channels():
    weighted = build_datamodule({**PHANTOM, "balance": "class_weights", "channels": 3},
                                mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    weighted.setup()
    counts = np.bincount(weighted.train_dataset.labels, minlength=4)
    assert torch.allclose(weighted.class_weights, torch.tensor(counts.sum() / (4 * counts), dtype=torch.float32))
    image = weighted.test_dataset[0]["image"]
    assert image.shape == (3, 32, 32) and torch.equal(image[0], image[2])
    balanced = build_datamodule({**PHANTOM, "balance": "downsample"})
    balanced.setup()
    everything = np.concatenate([balanced._dataset(s).labels for s in ("train", "val", "test")])
    assert len(set(np.bincount(everything).tolist())) == 1  # every class at the smallest class's size


def test_masks_follow_geometric_augmentation(tmp_path: Path):
    """A bright square and its mask must land in the same place after a strong random affine."""
    write_block_images(tmp_path, 8, shape=(48, 48), block=(12, 12))
    augment = {"Affine": {"rotate": [-40, 40], "translate_percent": [-0.2, 0.2], "scale": [0.8, 1.2], "p": 1.0,
                          "interpolation": 0}}
    dm = build_datamodule({"name": "covid_radiography", "root": str(tmp_path), "image_size": 48, "batch_size": 8,
                           "augment": augment, "split": [0.75, 0.125, 0.125]})
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    bright = dm.denormalize(batch["image"])[:, 0] > 0.5
    mask = batch["masks"]["lung"][:, 0].bool()
    assert (bright == mask).float().mean() > 0.99
    rows = dm.train_dataset.rows[batch["index"].numpy()]
    original = torch.from_numpy(np.asarray(dm._cache().masks()[rows, 0])).bool()
    assert not torch.equal(original, mask)  # the augmentation did move things


def test_loader_workers_map_the_cache_themselves(phantom_dm):
    dm = build_datamodule({**PHANTOM, "num_workers": 1})
    dm.setup()
    loader = dm.test_dataloader()
    assert loader.persistent_workers
    labels = torch.cat([b["label"] for b in loader])
    assert labels.tolist() == dm.test_dataset.labels.tolist()


DATA_CHOICES = sorted(p.stem for p in (CONFIG_DIR / "data").glob("*.yaml"))
SHARED_KEYS = set(OmegaConf.load(CONFIG_DIR / "data_common.yaml"))


def _composed_data(*overrides: str) -> dict:
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return OmegaConf.to_container(compose("train", overrides=list(overrides)).data, resolve=True)


def test_the_data_choices_are_the_eleven_datasets():
    assert DATA_CHOICES == ["brain_tumor", "chestxray14", "chexpert", "coronahack", "covid_radiography", "csv",
                            "image_folder", "mimic_cxr", "phantom", "split_folders", "vindr_cxr"]


@pytest.mark.parametrize("name", DATA_CHOICES)
def test_each_data_config_composes_the_shared_keys_and_is_valid(name: str):
    data = _composed_data(f"data={name}", "backbone=simple_cnn")
    assert data["name"] == data["format"] == name
    assert SHARED_KEYS <= set(data) and data["image_size"] == (64 if name == "phantom" else 224)
    if data["root"] is None and name != "phantom":
        data["root"] = "/somewhere"
    settings = parse_settings(data)
    assert settings.format == name and "HorizontalFlip" not in settings.augment
    assert (settings.resize, settings.dicom_frame, settings.build_workers) == ("pad", "middle", None)


def test_a_dataset_value_wins_over_the_shared_one_and_a_user_override_over_both():
    assert _composed_data("data=phantom")["num_workers"] == 0  # phantom's own value over the shared 2
    assert _composed_data("data=csv")["num_workers"] == 2
    assert _composed_data("data=csv", "data.image_size=96", "data.num_workers=0")["image_size"] == 96
