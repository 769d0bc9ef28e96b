import sys

from fimg_service.cli import main

sys.exit(main())
