<?php
// Per-wiki settings of the farm.
return [
	'wgServer' => [ 'default' => 'https://wiki.example' ],
];
