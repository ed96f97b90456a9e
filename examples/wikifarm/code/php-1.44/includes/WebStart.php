<?php
define( 'MW_VERSION', '1.44.0' );
require __DIR__ . '/Setup.php';
