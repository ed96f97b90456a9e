<?php
// A small stand-in for a MediaWiki release tree, so that `capstan deploy --build-image` works on a fresh checkout.
// Point image.sources in capstan.yaml at real trees (one per version) to build a real image.
require __DIR__ . '/includes/WebStart.php';
echo "MediaWiki " . MW_VERSION . "\n";
