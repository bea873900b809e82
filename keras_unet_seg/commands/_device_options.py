"""The speed and device options of `train`: precision, XLA, data-parallel training, hosts."""

from keras_unet_seg import _types, performance
from keras_unet_seg.commands import _parser
from keras_unet_seg.training import TrainingConfig

# How one process joins the others (`--strategy data_parallel` on several hosts):
# per process, so not options of the run's config.
HOST_OPTIONS = ("coordinator_address", "num_processes", "process_id")


def add_arguments(speed):
    """Adds the options to the command's `speed and devices` argument group."""
    _parser.add_speed_arguments(speed, training=True)
    speed.add_argument(
        "--strategy",
        type=_types.optional_choice(*performance.STRATEGIES),
        default=TrainingConfig.default("strategy"),
        help="data-parallel training: mirrored (TensorFlow: every local GPU, or the "
        "logical CPU devices), data_parallel (JAX: every device, of every host with "
        "--coordinator-address, --num-processes and --process-id) or none; --batch-size "
        "is then per device, and a last batch that does not split evenly among the "
        "devices is left out (the command says how many images)",
    )
    _add_host_arguments(speed)


def _add_host_arguments(speed):
    """How this process joins the others of `--strategy data_parallel` on several hosts."""
    speed.add_argument(
        "--coordinator-address",
        metavar="HOST:PORT",
        default=None,
        help="address of process 0, for --strategy data_parallel on several hosts, one "
        "process each, all with the same options (JAX only: Keras 3 does not support "
        "TensorFlow's multi-worker strategy, keras-team/keras#20585); default: the first "
        "of $KERAS_DISTRIBUTION_JOB_ADDRESSES, $JAX_COORDINATOR_ADDRESS, or under srun "
        "Slurm's first node",
    )
    speed.add_argument(
        "--num-processes",
        type=_types.positive_int,
        default=None,
        help="the number of those processes; default: $KERAS_DISTRIBUTION_NUM_PROCESSES, "
        "or under srun $SLURM_NTASKS",
    )
    speed.add_argument(
        "--process-id",
        type=_types.non_negative_int,
        default=None,
        help="this process's index among them, from 0 (the coordinator); default: "
        "$KERAS_DISTRIBUTION_PROCESS_ID, or under srun $SLURM_PROCID",
    )
