#!/bin/sh
# fuglu_mrtg.sh: runs MRTG on fuglu's statistics files (see conf/fuglu_mrtg.cfg.dist).
#
#   fuglu_mrtg.sh [CONFIG]     CONFIG defaults to /etc/fuglu/fuglu_mrtg.cfg
#
# MRTG refuses to run in a UTF-8 locale, hence LANG=C. Run it by hand once to see errors, then
# from cron every 5 minutes.
exec /usr/bin/env LANG=C LC_ALL=C /usr/bin/mrtg "${1:-/etc/fuglu/fuglu_mrtg.cfg}"
