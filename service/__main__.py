"""``python -m service``: the gateway program (service/programs/gateway.py); supervisord runs this."""

import sys

from service.programs.gateway import main

sys.exit(main())
