<?php
// The farm's shared MediaWiki configuration (a small stand-in for operations/mediawiki-config).
$wgSitename = 'Wikifarm';
$wgLanguageCode = 'en';
$wgMainCacheType = CACHE_NONE;
