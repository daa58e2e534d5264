/* main.c — the udsock command: dispatches to one file per subcommand. */
#include "udsock.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))) {
        printf("udsock %s\n", uds_version());
        return 0;
    }
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: udsock --version | --help\n");
        return 0;
    }
    fprintf(stderr, "usage: udsock --version | --help\n");
    return 2;
}
