from tripwire.cli import main

# Guarded: the collector's parse workers are spawned processes, which import the main module.
if __name__ == "__main__":
    main()
