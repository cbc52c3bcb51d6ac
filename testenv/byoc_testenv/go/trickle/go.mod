module byoc.local/trickleserver

go 1.22
