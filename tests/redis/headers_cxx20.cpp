// Compiled as C++20: the Redis headers serve users on either standard.
#include <backplane/broker/redis_pubsub.hpp>
#include <backplane/broker/redis_sharded.hpp>
#include <backplane/broker/redis_sharded_streams.hpp>
#include <backplane/broker/redis_streams.hpp>
#include <backplane/locator/redis_cluster_presence.hpp>
#include <backplane/locator/redis_presence.hpp>
#include <backplane/redis/cluster_map.hpp>
#include <backplane/redis/cluster_watch.hpp>
#include <backplane/redis/config.hpp>
#include <backplane/redis/connection.hpp>
#include <backplane/redis/inbox.hpp>
#include <backplane/redis/slot.hpp>
#include <backplane/redis/subscriber.hpp>
