"""`python -m ganforensics` runs the command-line interface."""

from ganforensics.cli.main import main

if __name__ == "__main__":
    main()
