/* error.c — version and error texts. */
#include "internal.h"

#include <string.h>

const char *uds_version(void) { return UDSOCK_VERSION; }

/*
 * Library codes get their own text; everything else is a negative errno and
 * goes to strerror(). strerror() may use a static buffer for unknown values,
 * which is acceptable for the "human-readable" contract.
 */
const char *uds_strerror(int err)
{
    switch (err) {
    case 0:
        return "Success";
    case UDS_EFRAME:
        return "Malformed frame header from peer";
    case UDS_ECLOSED:
        return "Connection closed";
    case UDS_ELOCKFILE:
        return "Lock file exists and is not udsock's";
    case UDS_EPATHMOVED:
        return "Path moved while binding";
    case UDS_ESYMLINK:
        return "Path goes through a symlink owned by another user";
    default:
        break;
    }
    if (err < 0)
        err = -err;
    return strerror(err);
}

void uds__sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}
