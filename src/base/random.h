/* Cheap thread-safe randomness for spreading retries and naps; not for
 * anything secret. */
#ifndef JM_RANDOM_H
#define JM_RANDOM_H

/* A uniform double in [0, 1), thread-safe. */
double jm__random_unit(void);

#endif
