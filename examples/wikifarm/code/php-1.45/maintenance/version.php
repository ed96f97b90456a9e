<?php
echo "MediaWiki " . MW_VERSION . "\n";
