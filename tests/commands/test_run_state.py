"""`_run_state`: the backups of a run, restored into a model that continues exactly."""

import keras
import numpy as np

from keras_unet_seg.commands import _run_state


def test_a_restored_backup_continues_exactly_as_the_uninterrupted_training(tmp_path):
    """With the same batches in the same order, a resumed run is bit for bit the same."""
    from keras_unet_seg import UNet
    from keras_unet_seg.losses import BCEDiceLoss

    rng = np.random.default_rng(0)
    images = rng.random((4, 16, 16, 3), dtype="float32")
    masks = (images[..., :1] > 0.5).astype("float32")

    def fit(model, callbacks=(), **kwargs):
        model.fit(
            images, masks, batch_size=2, shuffle=False, verbose=0, callbacks=[*callbacks], **kwargs
        )

    def make():
        keras.utils.set_random_seed(0)
        model = UNet(base_filters=4, depth=2)
        model.build((None, None, None, 3))
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=BCEDiceLoss())
        return model

    straight = make()
    fit(straight, epochs=4)
    first = make()
    paths = {"log_path": str(tmp_path / "log.csv"), "best_path": str(tmp_path / "best.keras")}
    fit(first, [_run_state.RunState(str(tmp_path), "val_loss", **paths)], epochs=2)
    second = make()
    restored = _run_state.restore(second, str(tmp_path / "backup"))
    assert restored.epoch == 2 and int(second.optimizer.iterations) == 4
    fit(second, epochs=4, initial_epoch=2)
    for resumed, uninterrupted in zip(second.get_weights(), straight.get_weights(), strict=True):
        np.testing.assert_array_equal(resumed, uninterrupted)
