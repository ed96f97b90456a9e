<?php
define( 'MW_VERSION', '1.45.0-wmf.1' );
require __DIR__ . '/Setup.php';
