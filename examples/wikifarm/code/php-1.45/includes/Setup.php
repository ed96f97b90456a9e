<?php
$configDir = getenv( 'MW_CONFIG_DIR' ) ?: dirname( __DIR__, 2 ) . '/wmf-config';
if ( is_readable( "$configDir/CommonSettings.php" ) ) {
	require "$configDir/CommonSettings.php";
}
