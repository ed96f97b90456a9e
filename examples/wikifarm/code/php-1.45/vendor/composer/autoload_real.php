<?php
// Composer's autoloader would live here.
