"""`svbr train` in float64, for the distributed-equivalence tests (run under torchrun or plain python).

In float32 the gradients of a small untrained SVBR-Net on 32-px crops carry
relative rounding errors of a few percent (measured against float64, the same for
torch's BatchNorm and ``GlobalBatchNorm2d``), so two summation orders drift apart
visibly within a few Adam steps; in float64 the runs agree to ~1e-12 and
a real difference in the maths cannot hide.
"""

import sys

import torch

from training.train import main

if __name__ == "__main__":
    torch.set_default_dtype(torch.float64)
    sys.exit(main())
