-- One database per service; Synapse needs the C collation.
CREATE DATABASE synapse ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
CREATE DATABASE matrixos;
CREATE DATABASE telegram;
CREATE DATABASE whatsapp;
