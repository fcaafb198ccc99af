#!/usr/bin/env bash

IPADDRESS="8.8.8.8"        
PASSWORD="s3cr3tp@ssw0rd" #NOKINGFISHER
PWD="a9lah209la81la3"
PASSPHRASE="all along the watchtower"
KEY="qpsbnoewdmdsoeg"
SECRET_KEY="402750613792034973"
PRIVATE_KEY="ja4wALsaho20af21dS"
#
another_password="blink182" #this is some comment NOKINGFISHER
backup_password="letmein123" #
export API_KEY=932ljaSKl32Fde

echo $PWD