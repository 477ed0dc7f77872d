"""``python -m tdm``: the same as the ``tdm`` command."""

from tdm.cli import main

if __name__ == "__main__":
    main()
