// svbr/svbr.hpp: everything an application needs.
#pragma once

#include "svbr/backend.hpp"
#include "svbr/config.hpp"
#include "svbr/deblurrer.hpp"
#include "svbr/errors.hpp"
#include "svbr/npy.hpp"
#include "svbr/pyramid.hpp"
#include "svbr/tiling.hpp"
