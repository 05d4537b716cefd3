"""`python -m twinning_kg` runs the same CLI as the `twinning-kg` script."""

from twinning_kg.cli import main

if __name__ == "__main__":
    main()
