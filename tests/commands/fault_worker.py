"""Runs `keras-unet-seg train` and interrupts it with a fault, for test_train_faults.py.

    python tests/commands/fault_worker.py '{"point": "weights", "signal": "KILL"}' train --out RUN

The fault (JSON) names a signal (`INT`: Ctrl-C, `KILL`: SIGKILL) and where it strikes:

- `time`: after `delay` seconds, wherever the process is (importing, training, writing);
- `weights`: a backup's weights file written half (as a kill during the write leaves it);
- `state`: the backup's `state.json` written half;
- `committed`: right after a backup's folder is renamed, before the log and best model;
- `log`, `best`, `prune`: on entering `write_log`, `save_model` (the best model or the
  final one) or `prune`.

A point fault strikes on its first occasion in the process; no `point`, no fault;
`fsize` (bytes) sets
`RLIMIT_FSIZE` instead, so that writing a bigger file fails as on a full disk.
"""

import json
import os
import signal
import sys
import threading


def _strike(fault):
    os.kill(os.getpid(), getattr(signal, f"SIG{fault['signal']}"))
    if fault["signal"] == "INT":  # KeyboardInterrupt comes at the next bytecode
        signal.pause()


def _truncate_half(path):
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def _install(fault):
    from keras_unet_seg.training import _backups

    point = fault.get("point")
    if point is None:
        return
    if point == "time":
        sig = getattr(signal, f"SIG{fault['signal']}")
        timer = threading.Timer(fault["delay"], os.kill, args=(os.getpid(), sig))
        timer.daemon = True
        timer.start()
        return
    if point in ("weights", "state", "committed"):
        original = _backups._fsync_folder

        def fsync_folder(path):
            original(path)
            partial = os.path.basename(path).startswith(".")
            if point == "weights" and partial:
                _truncate_half(os.path.join(path, _backups.WEIGHTS_FILE))
                _strike(fault)
            elif point == "state" and partial:
                _truncate_half(os.path.join(path, _backups.STATE_FILE))
                _strike(fault)
            elif point == "committed" and not partial:
                _strike(fault)

        _backups._fsync_folder = fsync_folder
        return
    name = {"log": "write_log", "best": "save_model", "prune": "prune"}[point]
    original = getattr(_backups, name)

    def strike_first(*args, **kwargs):
        _strike(fault)
        return original(*args, **kwargs)

    setattr(_backups, name, strike_first)


def main(argv):
    fault = json.loads(argv[1])
    if "fsize" in fault:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
        resource.setrlimit(resource.RLIMIT_FSIZE, (fault["fsize"], fault["fsize"]))
    elif fault.get("point") == "time":
        _install(fault)  # before the imports: a timed fault may strike while importing
    from keras_unet_seg.cli import main as cli_main

    if fault.get("point") not in (None, "time"):
        _install(fault)
    return cli_main(argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
