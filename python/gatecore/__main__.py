from gatecore.cli import main

raise SystemExit(main())
