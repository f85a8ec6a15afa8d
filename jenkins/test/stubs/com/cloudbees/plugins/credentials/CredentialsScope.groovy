package com.cloudbees.plugins.credentials
enum CredentialsScope { SYSTEM, GLOBAL, USER }
