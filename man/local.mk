# man/: manual pages, installed with the programs they describe.
dist_man_MANS += man/bulkheadd.8 man/bulkhead.conf.5
