"""Executors for ``tdm.run(executor=...)``: where and how ready nodes run.

``Dask`` imports ``distributed`` only when it is made (``pip install 'tdm-pipelines[dask]'``);
``from_cli`` maps ``tdm run --executor NAME --scheduler ADDRESS`` to an executor.
"""

from tdm.interpreter.dask import Dask, from_cli
from tdm.interpreter.executors import Executor, NodeOutcome, NodeTask, Sequential, Threads

__all__ = ["Dask", "Executor", "NodeOutcome", "NodeTask", "Sequential", "Threads", "from_cli"]
