<?php
// Runs a maintenance script by name: php MWScript.php SCRIPT [--wiki WIKI] ARGS...
require __DIR__ . '/includes/WebStart.php';
$script = $argv[1] ?? '';
$path = __DIR__ . '/maintenance/' . basename( $script );
if ( !is_readable( $path ) ) {
	fwrite( STDERR, "no such maintenance script: $script\n" );
	exit( 1 );
}
require $path;
