"""`python -m det.cli ...` (also what `torchrun -m det.cli train ...` runs)."""
from det.cli.main import main

if __name__ == "__main__":
    main()
