( function () { 'use strict'; window.mwStartup = true; }() );
