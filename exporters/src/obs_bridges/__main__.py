from obs_bridges.cli import main

raise SystemExit(main())
