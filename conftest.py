"""Pytest set-up shared by the chapters and the unit tests.

`make test` runs two pytest-xdist workers on a 2-core machine. A notebook kernel or a BLAS call that
starts one thread per core in each worker would put four busy threads on two cores, and OpenMP threads
that spin while they wait make that slower than one thread each. So each worker, and every notebook
kernel it starts (kernels inherit its environment), computes on one thread unless the caller chose
otherwise.
"""

import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")
