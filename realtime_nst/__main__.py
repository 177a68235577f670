from .cli import main

if __name__ == "__main__":  # a spawned worker imports this module again under another name
    raise SystemExit(main())
