-- A user's calendar feed: which generation of its secret URL is current. The URL itself is
-- derived (an HMAC of the user and the generation under the server's key), never stored;
-- rotating bumps the generation; revoking turns it off but keeps the generation, so a feed
-- made again continues past every earlier one and no revoked URL works again.
CREATE TABLE calendar_feeds (
    user_id    TEXT COLLATE "C" PRIMARY KEY,
    generation BIGINT NOT NULL,
    active     BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL
);
